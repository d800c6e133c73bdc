import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { runOk, waitFor } from '../lib/exec';
import { ensureDebianPackage } from '../lib/packages';
import {
  childrenOf,
  isAlive,
  isListening,
  openConnections,
  readStat,
  TICKS_PER_SECOND,
} from '../measure/proc';
import { hostAddress, hostName } from './addresses';
import { renderKnownHosts, renderSshdConfig } from './sshd-config';
import { SSHD_RECORD, type RunState, type SshdRecord } from './state';

export const SSHD = '/usr/sbin/sshd';
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

export interface FleetHost {
  index: number;
  name: string;
  address: string;
  port: number;
  /** the host's own folder: its deploy path */
  dir: string;
}

/** What the server side has done so far; two of them bracket a measured run. */
export interface HostSideSample {
  /** last pid handed out in the sshd's pid namespace */
  lastPid: number;
  /** CPU ticks of the sshd listener and everything it reaped */
  sshdTicks: number;
}

export interface HostSideDelta {
  /** processes created on the host side (sshd per connection and per channel, shells, their children) */
  processes: number;
  sshdCpuSeconds: number;
}

/**
 * The sshd runs as the first process of a pid namespace of its own. That buys two things: every process the
 * server side creates for any connection gets the next pid of that namespace, so the difference of
 * `ns_last_pid` is the exact number of processes started on the "hosts" (nothing else on this shared machine
 * lives there, and a child namespace counts up to 4194304 where the machine's pid_max may wrap at 32768);
 * and when the sshd ends, the kernel ends every process of the namespace, so no connection can outlive it.
 * Reading `ns_last_pid` means starting one process inside the namespace, which the delta leaves out.
 */
export function hostSideDelta(before: HostSideSample, after: HostSideSample): HostSideDelta {
  return {
    processes: after.lastPid - before.lastPid - 1,
    sshdCpuSeconds: (after.sshdTicks - before.sshdTicks) / TICKS_PER_SECOND,
  };
}

export interface Fleet {
  n: number;
  port: number;
  user: string;
  hosts: FleetHost[];
  clientKey: string;
  knownHosts: string;
  dir: string;
  sshdPid: number;
  /** Empties every host folder: each tool starts from fresh hosts. */
  resetHosts(): void;
  sample(): Promise<HostSideSample>;
  /** Waits until the sshd has no connection process left; returns how many remain. */
  waitIdle(timeoutMs: number): Promise<number>;
  /** Ends the sshd and with it every connection, removes the host folders; the sshd log is kept as `keepLog`. */
  stop(keepLog?: string): Promise<void>;
}

const running = new Set<number>();

/** Last resort on the way out (a second Ctrl-C, an exit handler): ends every fleet's sshd, and so its namespace, at once. */
export function killFleetsNow(): void {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  running.clear();
}

export async function ensureSshd(log: (line: string) => void): Promise<void> {
  await ensureDebianPackage(
    SSHD,
    'openssh-server',
    'only its sshd binary is used; the system sshd is not configured',
    log,
  );
}

export async function createKeys(state: RunState): Promise<void> {
  for (const [file, comment] of [
    [state.hostKey, 'homelab-deploy-bench-host'],
    [state.clientKey, 'homelab-deploy-bench-client'],
  ]) {
    await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  }
}

/** A port nothing listens on, below the kernel's ephemeral range so no outgoing connection takes it meanwhile. */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free TCP port found in 20000..29999');
}

function banner(address: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: address, port });
    let got = '';
    const done = (line: string) => {
      sock.destroy();
      resolve(line);
    };
    sock.setTimeout(timeoutMs, () => done('(timed out)'));
    sock.on('error', (err) => done(`(${err.message})`));
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\n')) done(got.slice(0, got.indexOf('\n')).trim());
    });
  });
}

/** A few addresses spread over the fleet, first and last included. */
function probeSample(n: number): number[] {
  const picks = new Set([1, n]);
  for (let k = 1; k < 8; k++) picks.add(Math.max(1, Math.round((n * k) / 8)));
  return [...picks].sort((a, b) => a - b);
}

async function startSshd(
  configFile: string,
  logFile: string,
  port: number,
): Promise<{ launcher: ChildProcess; sshdPid: number }> {
  // A chain of parent-death signals ties the fleet to the benchmark: if the benchmark dies, unshare gets
  // SIGKILL (setpriv --pdeathsig), and then the sshd does (--kill-child), which ends its whole namespace.
  const launcher = spawn(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      'unshare',
      '--pid',
      '--fork',
      '--kill-child',
      SSHD,
      '-D',
      '-f',
      configFile,
      '-E',
      logFile,
    ],
    { detached: true, stdio: 'ignore' },
  );
  const spawnError = new Promise<Error>((resolve) => launcher.once('error', resolve));
  let sshdPid = 0;
  const up = await waitFor(() => {
    if (launcher.exitCode !== null || launcher.pid === undefined) return true;
    if (!sshdPid) {
      sshdPid =
        childrenOf(launcher.pid).find((p) => {
          try {
            return fs.readlinkSync(`/proc/${p}/exe`) === SSHD;
          } catch {
            return false;
          }
        }) ?? 0;
    }
    return sshdPid !== 0 && isListening(port);
  }, 10_000);
  if (!up || launcher.exitCode !== null || !sshdPid) {
    if (launcher.exitCode === null) launcher.kill('SIGKILL');
    const err = launcher.pid === undefined ? await spawnError : undefined;
    let said = '';
    try {
      said = fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n');
    } catch {
      // no log yet
    }
    throw new Error(
      `the benchmark's sshd did not come up on port ${port}${err ? `: ${err.message}` : ''}${said ? `:\n${said}` : ''}`,
    );
  }
  return { launcher, sshdPid };
}

export async function startFleet(state: RunState, n: number, log: (line: string) => void): Promise<Fleet> {
  const user = os.userInfo().username;
  const dir = path.join(state.dir, `fleet-N${n}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'hosts'), { recursive: true });
  const hostKeyLine = fs.readFileSync(`${state.hostKey}.pub`, 'utf8');
  const authorizedKeys = path.join(dir, 'authorized_keys');
  fs.copyFileSync(`${state.clientKey}.pub`, authorizedKeys);
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // Debian's sshd refuses to start without its privsep dir

  let started: { launcher: ChildProcess; sshdPid: number } | undefined;
  let port = 0;
  let lastError: unknown;
  const configFile = path.join(dir, 'sshd_config');
  const logFile = path.join(dir, 'sshd.log');
  for (let attempt = 0; attempt < 3 && !started; attempt++) {
    port = await freePort();
    fs.writeFileSync(
      configFile,
      renderSshdConfig({
        port,
        hostKey: state.hostKey,
        authorizedKeys,
        user,
        home: state.home,
        maxStartups: n + 100,
        maxSessions: 64,
        sftpServer: SFTP_SERVER,
      }),
    );
    await runOk(SSHD, ['-t', '-f', configFile]);
    try {
      started = await startSshd(configFile, logFile, port);
    } catch (err) {
      lastError = err; // most likely the port was taken meanwhile: try another
    }
  }
  if (!started) throw lastError;
  const { launcher, sshdPid } = started;
  running.add(sshdPid);
  const record: SshdRecord = { sshdPid, starttime: readStat(sshdPid)?.starttime ?? 0 };
  fs.writeFileSync(path.join(dir, SSHD_RECORD), JSON.stringify(record));

  const hosts: FleetHost[] = [];
  for (let i = 1; i <= n; i++) {
    hosts.push({
      index: i,
      name: hostName(i),
      address: hostAddress(i),
      port,
      dir: path.join(dir, 'hosts', hostName(i)),
    });
  }
  const knownHosts = path.join(dir, 'known_hosts');
  fs.writeFileSync(
    knownHosts,
    renderKnownHosts(
      hosts.map((h) => h.address),
      port,
      hostKeyLine,
    ),
  );

  let stopped = false;
  const stop = async (keepLog?: string): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (isAlive(sshdPid)) process.kill(sshdPid, 'SIGTERM');
    if (!(await waitFor(() => !isAlive(sshdPid), 3000))) process.kill(sshdPid, 'SIGKILL');
    if (!(await waitFor(() => launcher.exitCode !== null || launcher.signalCode !== null, 3000)))
      launcher.kill('SIGKILL');
    running.delete(sshdPid);
    const clean = await waitFor(() => openConnections(port) === 0, 3000);
    if (keepLog && fs.existsSync(logFile)) fs.copyFileSync(logFile, keepLog);
    fs.rmSync(dir, { recursive: true, force: true });
    if (!clean) throw new Error(`${openConnections(port)} TCP connections on port ${port} outlived the sshd`);
  };

  const fleet: Fleet = {
    n,
    port,
    user,
    hosts,
    clientKey: state.clientKey,
    knownHosts,
    dir,
    sshdPid,
    resetHosts() {
      for (const h of hosts) {
        fs.rmSync(h.dir, { recursive: true, force: true });
        fs.mkdirSync(h.dir);
      }
    },
    async sample() {
      const out = await runOk('nsenter', [
        '-t',
        String(sshdPid),
        '-p',
        '--',
        'cat',
        '/proc/sys/kernel/ns_last_pid',
      ]);
      const st = readStat(sshdPid);
      if (!st) throw new Error(`the benchmark's sshd (pid ${sshdPid}) is gone`);
      return { lastPid: Number(out.trim()), sshdTicks: st.utime + st.stime + st.cutime + st.cstime };
    },
    async waitIdle(timeoutMs) {
      await waitFor(() => childrenOf(sshdPid).length === 0, timeoutMs);
      return childrenOf(sshdPid).length;
    },
    stop,
  };

  try {
    fleet.resetHosts();
    for (const i of probeSample(n)) {
      const h = hosts[i - 1];
      const line = await banner(h.address, port, 5000);
      if (!line.startsWith('SSH-2.0-'))
        throw new Error(`${h.name} (${h.address}:${port}) does not answer as SSH: ${line}`);
    }
    await fleet.waitIdle(5000);
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  log(`fleet up: ${n} hosts ${hosts[0].address}..${hosts[n - 1].address} port ${port}, sshd pid ${sshdPid}`);
  return fleet;
}
