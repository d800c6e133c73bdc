import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Real OpenSSH servers as separate loopback "hosts": each its own sshd process, host key, address, port and HOME.
 */
export interface SshTestHost {
  name: string;
  address: string;
  port: number;
  root: string;
  hostKeyPub: string;
  hostKeyFingerprint: string;
  pid: number;
}

export interface SshSandbox {
  dir: string;
  user: string;
  userKeyPath: string;
  userKeyPub: string;
  knownHostsPath: string;
  hosts: SshTestHost[];
  host(name: string): SshTestHost;
  writeKnownHosts(file: string, opts?: { hashed?: boolean; wrongFor?: string[] }): string;
  stopHost(name: string): Promise<void>;
  startHost(name: string): Promise<void>;
  ssh(name: string, command: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The host's sshd log (written at the sandbox's logLevel), e.g. to prove what a client did or did not do. */
  log(name: string): string;
  stop(): Promise<void>;
}

export const SSHD = '/usr/sbin/sshd';

/** The sshd_config every test host uses; shared with the network-namespace hosts of the e2e suite. */
export function sshdConfig(o: {
  listen: string;
  hostKey: string;
  dir: string;
  authorizedKeys: string;
  home: string;
  /** sshd LogLevel; ERROR keeps logs small, VERBOSE/DEBUG1 let a test see connections and auth attempts. */
  logLevel?: string;
  /** Sessions per connection; the default is high so fan-out tests are limited by the client only. */
  maxSessions?: number;
  /** The SFTP subsystem's command; e.g. `internal-sftp -P hardlink` for a server that refuses a request. */
  sftpSubsystem?: string;
}): string {
  return (
    [
      `ListenAddress ${o.listen}`,
      `HostKey ${o.hostKey}`,
      `PidFile ${path.join(o.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${o.authorizedKeys}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      `MaxSessions ${o.maxSessions ?? 64}`,
      'MaxStartups 200:30:400',
      'AllowTcpForwarding yes',
      `LogLevel ${o.logLevel ?? 'ERROR'}`,
      `Subsystem sftp ${o.sftpSubsystem ?? 'internal-sftp'}`,
      // Each host gets its own HOME, and root's real ~/.bashrc is not read on every command.
      `SetEnv HOME=${o.home}`,
    ].join('\n') + '\n'
  );
}

export function keygen(file: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', file]);
  return fs
    .readFileSync(file + '.pub', 'utf8')
    .trim()
    .split(' ')
    .slice(0, 2)
    .join(' ');
}

export function fingerprintOf(pubFile: string): string {
  return execFileSync('ssh-keygen', ['-lf', pubFile], { encoding: 'utf8' }).split(' ')[1];
}

export function banner(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('data', (d) => done(d.toString().startsWith('SSH-')));
    s.once('error', () => done(false));
    s.setTimeout(1000, () => done(false));
  });
}
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, address, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function startSshSandbox(opts: {
  names: string[];
  logLevel?: string;
  maxSessions?: number;
  sftpSubsystem?: string;
}): Promise<SshSandbox> {
  if (!fs.existsSync(SSHD))
    throw new Error(
      `${SSHD} is missing: install Debian's openssh-server (the jest global setup does this as root)`,
    );
  fs.mkdirSync('/run/sshd', { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-sshd-'));
  fs.chmodSync(dir, 0o755);
  const user = os.userInfo().username;
  const userKeyPath = path.join(dir, 'id_user');
  const userKeyPub = keygen(userKeyPath);
  fs.writeFileSync(path.join(dir, 'authorized_keys'), userKeyPub + '\n');
  // A random 127.x.y.0/24 per sandbox keeps parallel jest workers apart.
  const net16 = `127.${10 + Math.floor(Math.random() * 240)}.${1 + Math.floor(Math.random() * 250)}`;
  const procs = new Map<string, ChildProcess>();
  const hosts: SshTestHost[] = [];

  const launch = async (h: SshTestHost, cfg: string, log: string): Promise<void> => {
    const child = spawn(SSHD, ['-D', '-f', cfg, '-E', log], { stdio: 'ignore' });
    live.add(child);
    child.once('exit', () => live.delete(child));
    procs.set(h.name, child);
    h.pid = child.pid ?? 0;
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) break;
      if (await banner(h.address, h.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-10).join('\n') : '';
    throw new Error(`sshd for ${h.name} did not start on ${h.address}:${h.port}: ${tail}`);
  };

  for (const [i, name] of opts.names.entries()) {
    const hdir = path.join(dir, name);
    const root = path.join(hdir, 'root');
    fs.mkdirSync(root, { recursive: true });
    const address = `${net16}.${i + 1}`;
    const port = await freePort(address);
    const hostKey = path.join(hdir, 'host_ed25519');
    const hostKeyPub = keygen(hostKey);
    const cfg = path.join(hdir, 'sshd_config');
    fs.writeFileSync(
      cfg,
      sshdConfig({
        listen: `${address}:${port}`,
        hostKey,
        dir: hdir,
        authorizedKeys: path.join(dir, 'authorized_keys'),
        home: root,
        logLevel: opts.logLevel,
        maxSessions: opts.maxSessions,
        sftpSubsystem: opts.sftpSubsystem,
      }),
    );
    const h: SshTestHost = {
      name,
      address,
      port,
      root,
      hostKeyPub,
      hostKeyFingerprint: fingerprintOf(hostKey + '.pub'),
      pid: 0,
    };
    hosts.push(h);
    await launch(h, cfg, path.join(hdir, 'sshd.log'));
  }

  const host = (name: string) => {
    const h = hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no test host ${name}`);
    return h;
  };
  const writeKnownHosts: SshSandbox['writeKnownHosts'] = (file, o = {}) => {
    const lines = hosts.map((h) => {
      const entry = `[${h.address}]:${h.port}`;
      const key = o.wrongFor?.includes(h.name)
        ? keygen(path.join(dir, `wrong-${h.name}-${randomBytes(3).toString('hex')}`))
        : h.hostKeyPub;
      if (!o.hashed) return `${entry} ${key}`;
      const salt = randomBytes(20);
      return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(entry).digest('base64')} ${key}`;
    });
    fs.writeFileSync(file, lines.join('\n') + '\n');
    return file;
  };
  const knownHostsPath = writeKnownHosts(path.join(dir, 'known_hosts'));

  const stopHost = async (name: string) => {
    const c = procs.get(name);
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await gone;
  };

  return {
    dir,
    user,
    userKeyPath,
    userKeyPub,
    knownHostsPath,
    hosts,
    host,
    writeKnownHosts,
    stopHost,
    async startHost(name) {
      const hdir = path.join(dir, name);
      await launch(host(name), path.join(hdir, 'sshd_config'), path.join(hdir, 'sshd.log'));
    },
    ssh(name, command) {
      const h = host(name);
      return new Promise((resolve) => {
        const child = spawn('ssh', [
          '-i',
          userKeyPath,
          '-p',
          String(h.port),
          '-o',
          `UserKnownHostsFile=${knownHostsPath}`,
          '-o',
          'StrictHostKeyChecking=yes',
          '-o',
          'BatchMode=yes',
          `${user}@${h.address}`,
          command,
        ]);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      });
    },
    log(name) {
      const file = path.join(dir, host(name).name, 'sshd.log');
      return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    },
    async stop() {
      await Promise.all(hosts.map((h) => stopHost(h.name)));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
