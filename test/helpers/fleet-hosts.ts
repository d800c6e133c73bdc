import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { releaseIdFor } from '../../src/run/release';
import { banner, keygen, SSHD } from './sshd';

/**
 * A loopback fleet for rollout tests: N hosts served by ONE real OpenSSH sshd. OpenSSH accepts at most 16
 * ListenAddress sockets, so the sshd binds the wildcard address pinned to the loopback device (`rdomain lo`):
 * every 127.0.0.0/8 address answers on its port, and each host is one address of a random 127.x.y.0/24 block
 * (parallel jest workers pick different blocks and ports). Every host has its own folder, its deploy path, and
 * shares the sshd's host key, listed once per `[address]:port` in known_hosts.
 *
 * The sshd is the first process of its own pid namespace: when it ends, the kernel ends every session it
 * started, so no connection of a test outlives the fleet.
 */
export interface FleetHost {
  name: string;
  address: string;
  /** The sshd's port; a target meant to be unreachable is given the fleet's deadPort instead. */
  port: number;
  /** The host's own folder; projects deploy below it. */
  dir: string;
}

export interface FleetHosts {
  dir: string;
  user: string;
  userKeyPath: string;
  knownHostsPath: string;
  port: number;
  /** A port where nothing listens on any loopback address: targets aimed at it are unreachable. */
  deadPort: number;
  hosts: FleetHost[];
  host(name: string): FleetHost;
  /** The first `n` host names (all of them without `n`). */
  names(n?: number): string[];
  /** TCP sockets this process holds open to the sshd (any state but LISTEN/TIME_WAIT/CLOSE). */
  clientSockets(): number;
  /** Waits until this process holds no connection to the sshd; returns how many it still holds after `timeoutMs`. */
  idle(timeoutMs: number): Promise<number>;
  /** File descriptors this process has open. */
  openFds(): number;
  /** Ends the sshd, and with it every session; throws if a connection to it outlives it. */
  stop(): Promise<void>;
}

const TCP_STATES_GONE = new Set(['06', '07', '0A']); // TIME_WAIT, CLOSE, LISTEN

/** Socket inodes of this process: the ones /proc/self/fd links to. */
function ownSocketInodes(): Set<string> {
  const out = new Set<string>();
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
      if (m) out.add(m[1]);
    } catch {
      // closed between readdir and readlink
    }
  }
  return out;
}

/** Rows of /proc/net/tcp: remote port, state and inode of every IPv4 TCP socket of this network namespace. */
function tcpRows(): { remotePort: number; localPort: number; state: string; inode: string }[] {
  return fs
    .readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((c) => c.length > 9)
    .map((c) => ({
      localPort: parseInt(c[1].split(':')[1], 16),
      remotePort: parseInt(c[2].split(':')[1], 16),
      state: c[3],
      inode: c[9],
    }));
}

/** Connections to `port` from anyone on this machine (both ends count once: the client side). */
function connectionsTo(port: number): number {
  return tcpRows().filter((r) => r.remotePort === port && !TCP_STATES_GONE.has(r.state)).length;
}

function listening(port: number): boolean {
  return tcpRows().some((r) => r.localPort === port && r.state === '0A');
}

/** A port nothing listens on right now (the kernel picked it, then it was closed again). */
function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '0.0.0.0', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function until(test: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (test()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return test();
}

/** The fleet's sshd_config: one wildcard socket on the loopback device, room for a fan-out, a HOME of its own. */
export function fleetSshdConfig(o: {
  port: number;
  hostKey: string;
  authorizedKeys: string;
  home: string;
  maxStartups: number;
}): string {
  return [
    `ListenAddress 0.0.0.0:${o.port} rdomain lo`,
    `HostKey ${o.hostKey}`,
    'PidFile none',
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    'StrictModes no',
    'UsePAM no',
    'UseDNS no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin prohibit-password',
    'PrintMotd no',
    `MaxStartups ${o.maxStartups}`,
    'MaxSessions 64',
    'LogLevel ERROR',
    'Subsystem sftp internal-sftp',
    `SetEnv HOME=${o.home}`,
    '',
  ].join('\n');
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export async function startFleetHosts(opts: { count: number }): Promise<FleetHosts> {
  if (!fs.existsSync(SSHD))
    throw new Error(`${SSHD} is missing: install Debian's openssh-server (the jest global setup does this)`);
  if (opts.count < 1 || opts.count > 254) throw new Error(`a fleet has 1-254 hosts, not ${opts.count}`);
  fs.mkdirSync('/run/sshd', { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-fleet-'));
  fs.chmodSync(dir, 0o755);
  const user = os.userInfo().username;
  const userKeyPath = path.join(dir, 'id_user');
  fs.writeFileSync(path.join(dir, 'authorized_keys'), keygen(userKeyPath) + '\n');
  const hostKey = path.join(dir, 'host_ed25519');
  const hostKeyPub = keygen(hostKey);
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  const block = `127.${10 + Math.floor(Math.random() * 240)}.${1 + Math.floor(Math.random() * 250)}`;
  const cfg = path.join(dir, 'sshd_config');
  const log = path.join(dir, 'sshd.log');

  let child: ChildProcess | undefined;
  let port = 0;
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await unusedPort();
    fs.writeFileSync(
      cfg,
      fleetSshdConfig({
        port,
        hostKey,
        authorizedKeys: path.join(dir, 'authorized_keys'),
        home,
        maxStartups: opts.count * 2 + 100,
      }),
    );
    // setpriv ties unshare to this worker and --kill-child ties the sshd to unshare: if the worker dies, the
    // namespace and every session in it go with it.
    const c = spawn(
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
        cfg,
        '-E',
        log,
      ],
      { stdio: 'ignore' },
    );
    live.add(c);
    c.once('exit', () => live.delete(c));
    const up = await until(() => c.exitCode !== null || listening(port), 10_000);
    if (up && c.exitCode === null && (await banner(`${block}.1`, port))) child = c;
    else c.kill('SIGKILL');
  }
  if (!child) {
    const said = fs.existsSync(log)
      ? fs.readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n')
      : '';
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`the fleet's sshd did not come up${said ? `: ${said}` : ''}`);
  }
  const sshd = child;

  let deadPort = await unusedPort();
  while (deadPort === port) deadPort = await unusedPort();
  const hosts: FleetHost[] = [];
  for (let i = 1; i <= opts.count; i++) {
    const name = `h${String(i).padStart(3, '0')}`;
    const hdir = path.join(dir, 'hosts', name);
    fs.mkdirSync(hdir, { recursive: true });
    hosts.push({ name, address: `${block}.${i}`, port, dir: hdir });
  }
  const knownHostsPath = path.join(dir, 'known_hosts');
  fs.writeFileSync(knownHostsPath, hosts.map((h) => `[${h.address}]:${port} ${hostKeyPub}\n`).join(''));

  const clientSockets = () => {
    const mine = ownSocketInodes();
    return tcpRows().filter(
      (r) => r.remotePort === port && !TCP_STATES_GONE.has(r.state) && mine.has(r.inode),
    ).length;
  };
  let stopped = false;
  return {
    dir,
    user,
    userKeyPath,
    knownHostsPath,
    port,
    deadPort,
    hosts,
    host(name) {
      const h = hosts.find((x) => x.name === name);
      if (!h) throw new Error(`no fleet host ${name}`);
      return h;
    },
    names(n) {
      return hosts.slice(0, n ?? hosts.length).map((h) => h.name);
    },
    clientSockets,
    async idle(timeoutMs) {
      await until(() => clientSockets() === 0, timeoutMs);
      return clientSockets();
    },
    openFds() {
      return fs.readdirSync('/proc/self/fd').length;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (sshd.exitCode === null && sshd.signalCode === null) {
        // unshare ignores SIGTERM while it waits for its child; SIGKILL ends it, and --kill-child the sshd.
        const gone = new Promise((r) => sshd.once('exit', r));
        sshd.kill('SIGKILL');
        await gone;
      }
      const clean = await until(() => !listening(port) && connectionsTo(port) === 0, 5000);
      fs.rmSync(dir, { recursive: true, force: true });
      if (!clean)
        throw new Error(`${connectionsTo(port)} connection(s) to the fleet's port ${port} outlived its sshd`);
    },
  };
}

/**
 * One fleet for a whole test file, stopped (sshd, sessions, folders) when the file ends; projects made through it
 * have their repos removed then too.
 */
export function useFleetHosts(count: number): {
  readonly fleet: FleetHosts;
  project(name?: string): FleetProject;
} {
  let fleet: FleetHosts | undefined;
  const repos: string[] = [];
  beforeAll(async () => {
    fleet = await startFleetHosts({ count });
  }, 60_000);
  afterAll(async () => {
    for (const r of repos) fs.rmSync(r, { recursive: true, force: true });
    await fleet?.stop();
  });
  return {
    get fleet(): FleetHosts {
      if (!fleet) throw new Error('the fleet starts in beforeAll');
      return fleet;
    },
    project(name) {
      const p = makeFleetProject(this.fleet, name);
      repos.push(p.repo);
      return p;
    },
  };
}

/** The up command: a host refuses the release a `fail-up-<release>` file in its deploy path names. */
export const UP =
  'test ! -e "$HD_PATH/fail-up-$HD_RELEASE" || { echo "up refused here by fail-up-$HD_RELEASE" >&2; exit 3; }';

/**
 * The health check: `current` names the release checked, no `fail-health-<release>` file says it is sick on this
 * host, and the release's own HEALTH file says "healthy" (a bad release says otherwise everywhere). It runs on the
 * host through the target's own connection, so no service has to run.
 */
export const HEALTH_CHECK = {
  name: 'release',
  command:
    'test "$(readlink {{host.path}}/current)" = releases/{{release.id}} && test ! -e {{host.path}}/fail-health-{{release.id}} && cat {{host.path}}/current/HEALTH',
  expect: { output: 'healthy' },
  retries: 0,
  interval: '100ms',
  timeout: '10s',
};

export interface FleetSpec {
  /** Fleet hosts this project deploys to, in order. */
  targets: string[];
  /** Targets aimed at the dead port: nothing answers there. */
  unreachable?: string[];
  labels?: Record<string, Record<string, string>>;
  /** The config's stages; default: one stage `fleet` with every target and the health check. */
  stages?: Record<string, unknown>[];
  /** defaults.parallel. */
  parallel?: number;
  /** More top-level keys: window, checkpoint, notify. */
  extra?: Record<string, unknown>;
}

export interface FleetProject {
  repo: string;
  configPath: string;
  /** Deploy path per target. */
  paths: Record<string, string>;
  /**
   * Writes the config for `spec` and commits a new release (HEALTH says `healthy` unless `broken`); returns its
   * release id. Nothing is deployed.
   */
  release(spec: FleetSpec, o?: { broken?: boolean }): string;
  /** The release `current` points at, read from the host's folder; null when there is none. */
  current(name: string): string | null;
  currents(names: string[]): Record<string, string | null>;
  /** Whether the release reached the host at all (uploaded, even if never switched to). */
  hasRelease(name: string, release: string): boolean;
  /** The host's audit log as written on the host ('' when there is none). */
  auditLog(name: string): string;
  failUp(name: string, release: string): void;
  failHealth(name: string, release: string): void;
}

function git(repo: string, args: string[]): string {
  return execFileSync(
    'git',
    ['-c', 'user.name=test', '-c', 'user.email=test@example.com', '-c', 'commit.gpgsign=false', ...args],
    { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  ).trim();
}

/**
 * A git repo whose `app` folder is the release (HEALTH, REVISION) and whose config aims the `command` strategy at
 * fleet hosts: a one-line up, a `true` down, a command health check. Each project deploys to its own folder
 * below every host's, so projects of one file never see each other's releases.
 */
export function makeFleetProject(fleet: FleetHosts, name = 'fleet'): FleetProject {
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-fleet-repo-'));
  const tag = path.basename(repo);
  fs.mkdirSync(path.join(repo, 'app'));
  git(repo, ['init', '-q', '-b', 'main']);
  const configPath = path.join(repo, 'homelab-deploy.yml');
  const paths: Record<string, string> = {};
  for (const h of fleet.hosts) paths[h.name] = path.join(h.dir, tag);
  let n = 0;
  const pathOf = (host: string) => {
    const p = paths[host];
    if (!p) throw new Error(`no fleet host ${host}`);
    return p;
  };
  return {
    repo,
    configPath,
    paths,
    release(spec, o = {}) {
      const unreachable = new Set(spec.unreachable ?? []);
      const config = {
        version: 1,
        project: name,
        source: 'app',
        defaults: {
          ssh: {
            user: fleet.user,
            key: fleet.userKeyPath,
            known_hosts: fleet.knownHostsPath,
            connect_timeout: '5s',
          },
          deploy: { strategy: 'command', up: UP, down: 'true', timeout: '30s' },
          runtime_check: 'true',
          min_free_disk: '1MB',
          keep_releases: 3,
          ...(spec.parallel ? { parallel: spec.parallel } : {}),
        },
        hosts: Object.fromEntries(
          spec.targets.map((t) => {
            const h = fleet.host(t);
            return [
              t,
              {
                address: h.address,
                ssh: { port: unreachable.has(t) ? fleet.deadPort : h.port },
                path: pathOf(t),
                ...(spec.labels?.[t] ? { labels: spec.labels[t] } : {}),
              },
            ];
          }),
        ),
        stages: spec.stages ?? [{ name: 'fleet', hosts: spec.targets, health: [HEALTH_CHECK] }],
        ...spec.extra,
      };
      fs.writeFileSync(configPath, stringify(config, { lineWidth: 0 }));
      n++;
      fs.writeFileSync(path.join(repo, 'app', 'HEALTH'), o.broken ? 'broken\n' : 'healthy\n');
      fs.writeFileSync(path.join(repo, 'app', 'REVISION'), `r${n}\n`);
      git(repo, ['add', '-A']);
      git(repo, ['commit', '-q', '-m', `r${n}`]);
      return releaseIdFor(git(repo, ['rev-parse', 'HEAD']));
    },
    current(host) {
      try {
        return path.basename(fs.readlinkSync(path.join(pathOf(host), 'current')));
      } catch {
        return null;
      }
    },
    currents(names) {
      return Object.fromEntries(names.map((h) => [h, this.current(h)]));
    },
    hasRelease(host, release) {
      return fs.existsSync(path.join(pathOf(host), 'releases', release));
    },
    auditLog(host) {
      try {
        return fs.readFileSync(path.join(pathOf(host), '.homelab-deploy', 'audit.log'), 'utf8');
      } catch {
        return '';
      }
    },
    failUp(host, release) {
      fs.mkdirSync(pathOf(host), { recursive: true });
      fs.writeFileSync(path.join(pathOf(host), `fail-up-${release}`), '');
    },
    failHealth(host, release) {
      fs.mkdirSync(pathOf(host), { recursive: true });
      fs.writeFileSync(path.join(pathOf(host), `fail-health-${release}`), '');
    },
  };
}
