import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { banner, keygen } from './sshd';

/**
 * Real separate hosts on one machine, for the container e2e tests and the fault matrix. Each host is
 * - its own network namespace, reached from the test process over a veth pair (a /30 of 10.213.<n>.0/24);
 * - its own mount namespace, where podman's storage, runtime and config dirs are per-host bind mounts (with
 *   shared storage podman-compose 1.0.3 starts one host's container on another, see shared/DESIGN.md);
 * - its own pid namespace, so `ps`/`kill` on one host never touch another, and killing the host kills its
 *   containers;
 * - its own sshd (Debian's OpenSSH) running inside all three, so an SSH session sees that host's podman only.
 * Bare hosts (`containers: false`) skip podman and run sshd as a child of a small init, so a test can stop and
 * start it like a service while the host (and its open sessions) lives on.
 */
export interface NetnsHost {
  name: string;
  /** The host's address inside its namespace; the root namespace routes to it over the veth pair. */
  address: string;
  port: number;
  /** HOME of SSH sessions on this host; deploy paths go below it. */
  root: string;
  /** `ip netns` name. */
  ns: string;
  hostKeyPub: string;
  hostKeyFingerprint: string;
  /** This host's private dir on the machine: sshd config, host key, pid file and log. */
  dir: string;
  hostKeyPath: string;
  sshdConfigPath: string;
  /** This host's own authorized_keys: emptying it makes the host refuse the test key. */
  authorizedKeysPath: string;
  /** The host's end of the veth pair, inside its namespace (for `ip link set ... down` and iptables rules). */
  iface: string;
}

export interface NetnsOptions {
  names: string[];
  /** Per-host podman storage and a healthcheck loop (default). Bare hosts start faster and have no podman. */
  containers?: boolean;
  /** sshd's ForceCommand: a wrapper that runs each client command (it gets SSH_ORIGINAL_COMMAND). */
  forceCommand?: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface NetnsSandbox {
  dir: string;
  user: string;
  userKeyPath: string;
  knownHostsPath: string;
  hosts: NetnsHost[];
  host(name: string): NetnsHost;
  /** The host's init process (its pid 1), as the machine's pid namespace numbers it; undefined once stopped. */
  initPid(name: string): number | undefined;
  /** Runs a shell command inside the host's namespaces (not over SSH), in its root dir: for assertions. */
  exec(name: string, command: string, opts?: { timeoutMs?: number }): Promise<ExecResult>;
  /** GET http://<host address>:<port><path> from the test process; status 0 when nothing answers. */
  http(
    name: string,
    port: number,
    urlPath: string,
    timeoutMs?: number,
  ): Promise<{ status: number; body: string }>;
  stop(): Promise<void>;
}

const PACKAGES = ['podman', 'runc', 'podman-compose', 'busybox-static', 'iproute2', 'openssh-server'];
const NEEDED = [
  '/usr/bin/podman',
  '/usr/bin/podman-compose',
  '/usr/sbin/runc',
  '/usr/sbin/sshd',
  '/usr/bin/ssh-keygen',
];

/** The config DESIGN.md found to work here: crun and the default ulimits do not work in this sandbox. */
const CONTAINERS_CONF =
  '# written by test/helpers/netns-hosts.ts for this test host\n[engine]\nruntime = "runc"\n\n' +
  '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n';

/** Per-host directory → where it is mounted inside the host. */
const HOST_MOUNTS: [string, string][] = [
  ['storage', '/var/lib/containers'],
  ['run-containers', '/run/containers'],
  ['run-libpod', '/run/libpod'],
  ['etc-containers', '/etc/containers'], // includes networks/ and this host's containers.conf
  ['cni', '/var/lib/cni'], // CNI's IP allocations and cached results
  ['netns', '/run/netns'], // the containers' network namespaces, kept out of the machine's `ip netns`
];

const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

/** Bare hosts need only OpenSSH, iproute2 and util-linux's nsenter/unshare. */
function ensureBareTooling(): void {
  if (process.getuid?.() !== 0)
    throw new Error('network-namespace test hosts need root (ip netns, nsenter, unshare)');
  const needed = ['/usr/sbin/sshd', '/usr/bin/ssh-keygen', '/usr/sbin/ip', SFTP_SERVER];
  if (needed.every((f) => fs.existsSync(f))) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const pkgs = ['openssh-server', 'openssh-client', 'iproute2'];
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], {
      stdio: 'inherit',
      env,
    }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    if (!install()) throw new Error(`apt-get install ${pkgs.join(' ')} failed`);
  }
}

function staticBusybox(): boolean {
  return fs.existsSync('/bin/busybox') && spawnSync('ldd', ['/bin/busybox']).status !== 0;
}

/** Installs what the hosts need as root; fails (never skips) with what to install otherwise. */
export function ensureContainerTooling(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the container e2e tests create network namespaces and need root (they install: ' +
        `apt-get install -y ${PACKAGES.join(' ')})`,
    );
  }
  if (NEEDED.every((f) => fs.existsSync(f)) && staticBusybox() && fs.existsSync('/usr/sbin/ip')) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...PACKAGES], {
      stdio: 'inherit',
      env,
    }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    if (!install()) throw new Error(`apt-get install ${PACKAGES.join(' ')} failed`);
  }
  if (!staticBusybox()) throw new Error('/bin/busybox is not statically linked: install busybox-static');
}

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });

/** A /24 of 10.213.0.0/16 that no interface of this machine uses (parallel sandboxes pick different ones). */
function freeSubnet(): number {
  const used = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' });
  for (let i = 0; i < 50; i++) {
    const n = 1 + Math.floor(Math.random() * 254);
    if (!used.includes(`10.213.${n}.`)) return n;
  }
  throw new Error('no free 10.213.x.0/24 subnet for the test hosts');
}

function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
  });
}

interface Live {
  host: NetnsHost;
  outer: string;
  proc?: ChildProcess;
  init?: number; // pid (in the machine's pid namespace) of the host's pid 1
}

/**
 * The host's pid 1 for bare hosts: sshd runs as its child (daemonized, so `kill $(cat sshd.pid)` stops only the
 * listener, as stopping a service does, and running it again starts it), and `wait` reaps what gets orphaned.
 */
function bareInit(sshd: string): string[] {
  return [
    'exec 3<&0',
    "trap 'exit 0' TERM",
    // Lifeline, as for container hosts: when the test process dies the pipe reads EOF and the host ends.
    '(cat <&3 >/dev/null 2>&1; kill -TERM 1) </dev/null >/dev/null 2>&1 &',
    `${sshd} </dev/null 3<&-`,
    'while :; do wait; done',
  ];
}

/** The host's pid 1 for container hosts: per-host podman dirs, a healthcheck loop, then sshd itself. */
function containerInit(hdir: string, cfg: string, sshdLog: string): string {
  // This host's /etc/containers: the machine's files plus its own containers.conf and networks/, so the
  // machine's config is neither needed nor changed.
  const etc = path.join(hdir, 'etc-containers');
  if (fs.existsSync('/etc/containers')) fs.cpSync('/etc/containers', etc, { recursive: true });
  fs.rmSync(path.join(etc, 'networks'), { recursive: true, force: true });
  fs.mkdirSync(path.join(etc, 'networks'), { recursive: true });
  fs.writeFileSync(path.join(etc, 'containers.conf'), CONTAINERS_CONF);
  const cgroups = path.join(hdir, 'cgroup-move');
  fs.mkdirSync(cgroups);

  return [
    'set -e',
    'exec 3<&0',
    // A fresh sysfs shows this network namespace's interfaces (CNI reads /sys/class/net), but it hides
    // the cgroup mounts under it that runc needs: carry them over.
    `mount --rbind /sys/fs/cgroup ${sq(cgroups)}`,
    'mount -t sysfs sysfs /sys',
    `mount --move ${sq(cgroups)} /sys/fs/cgroup`,
    // podman keeps its lock table in /dev/shm/libpod_lock: shared, the first podman of each host races the
    // others to create it on a fresh machine ("failed to open 2048 locks"). A real host has its own.
    'mount -t tmpfs -o mode=1777,size=64m tmpfs /dev/shm',
    ...HOST_MOUNTS.map(([src, dst]) => {
      const from = path.join(hdir, src);
      fs.mkdirSync(from, { recursive: true });
      return `mkdir -p ${dst} && mount --bind ${sq(from)} ${dst}`;
    }),
    // podman runs compose healthchecks from systemd timers; there is no systemd here, so run them every
    // second for every container that has one. `set +e`: a failing check must not end the loop.
    '(set +e; while sleep 1; do for c in $(podman ps -q --filter health=starting --filter health=healthy ' +
      '--filter health=unhealthy 2>/dev/null); do podman healthcheck run "$c" >/dev/null 2>&1; done; done) ' +
      '</dev/null >/dev/null 2>&1 3<&- &',
    // Lifeline: stdin is a pipe from the test process. When that process dies, even by SIGKILL, the pipe
    // reads EOF and sshd (pid 1 here) gets SIGTERM; its exit takes every process of the host with it.
    '(cat <&3 >/dev/null 2>&1; kill -TERM 1) </dev/null >/dev/null 2>&1 &',
    `exec /usr/sbin/sshd -D -f ${sq(cfg)} -E ${sq(sshdLog)} </dev/null 3<&-`,
  ].join('\n');
}

export async function startNetnsHosts(opts: NetnsOptions): Promise<NetnsSandbox> {
  const containers = opts.containers ?? true;
  if (containers) ensureContainerTooling();
  else ensureBareTooling();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-netns-'));
  fs.chmodSync(dir, 0o755);
  const tag = Math.random().toString(36).slice(2, 7);
  const subnet = freeSubnet();
  const userKeyPath = path.join(dir, 'id_user');
  const userKeyPub = keygen(userKeyPath);
  const lives: Live[] = [];
  let stopped = false;

  // unshare ignores SIGTERM while it waits for its child; SIGKILL makes --kill-child take the whole pid
  // namespace (sshd, conmon, containers) down with it.
  const killAll = () => {
    for (const l of lives) if (l.proc && l.proc.exitCode === null) l.proc.kill('SIGKILL');
    for (const l of lives) {
      spawnSync('ip', ['netns', 'del', l.host.ns], { stdio: 'ignore' });
      spawnSync('ip', ['link', 'del', l.outer], { stdio: 'ignore' });
    }
  };
  const onExit = () => killAll();
  process.once('exit', onExit);

  const start = async (name: string, i: number): Promise<void> => {
    const ns = `hd-${tag}-${i}`;
    const outer = `hdv${tag}${i}`;
    const inner = `hdi${tag}${i}`;
    const address = `10.213.${subnet}.${4 * i + 2}`;
    const hdir = path.join(dir, name);
    const root = path.join(hdir, 'root');
    fs.mkdirSync(root, { recursive: true });
    const hostKey = path.join(hdir, 'host_ed25519');
    const cfg = path.join(hdir, 'sshd_config');
    const authorizedKeys = path.join(hdir, 'authorized_keys');
    fs.writeFileSync(authorizedKeys, userKeyPub + '\n');
    const host: NetnsHost = {
      name,
      address,
      port: 22,
      root,
      ns,
      hostKeyPub: '',
      hostKeyFingerprint: '',
      dir: hdir,
      hostKeyPath: hostKey,
      sshdConfigPath: cfg,
      authorizedKeysPath: authorizedKeys,
      iface: inner,
    };
    const live: Live = { host, outer };
    lives.push(live);

    ip('netns', 'add', ns);
    ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner);
    ip('link', 'set', inner, 'netns', ns);
    ip('addr', 'add', `10.213.${subnet}.${4 * i + 1}/30`, 'dev', outer);
    ip('link', 'set', outer, 'up');
    ip('-n', ns, 'addr', 'add', `${address}/30`, 'dev', inner);
    ip('-n', ns, 'link', 'set', inner, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');

    host.hostKeyPub = keygen(hostKey);
    host.hostKeyFingerprint = execFileSync('ssh-keygen', ['-lf', hostKey + '.pub'], {
      encoding: 'utf8',
    }).split(' ')[1];
    fs.writeFileSync(
      cfg,
      [
        `ListenAddress ${address}:22`,
        `HostKey ${hostKey}`,
        `PidFile ${path.join(hdir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'MaxSessions 64',
        'MaxStartups 200:30:400',
        'LogLevel ERROR',
        // A ForceCommand wrapper can only start an SFTP server that is a program, not sshd's built-in one.
        opts.forceCommand ? `Subsystem sftp ${SFTP_SERVER}` : 'Subsystem sftp internal-sftp',
        ...(opts.forceCommand ? [`ForceCommand ${opts.forceCommand}`] : []),
        // Each host its own HOME, and the machine's shell profile is not read on every command.
        `SetEnv HOME=${root}`,
      ].join('\n') + '\n',
    );
    const sshdLog = path.join(hdir, 'sshd.log');

    const script = containers
      ? containerInit(hdir, cfg, sshdLog)
      : bareInit(`/usr/sbin/sshd -f ${sq(cfg)} -E ${sq(sshdLog)}`).join('\n');
    // nsenter --net (not `ip netns exec`, which remounts /sys and loses the cgroup mounts before we can
    // carry them over), then new mount and pid namespaces.
    const proc = spawn(
      'nsenter',
      [
        `--net=/run/netns/${ns}`,
        'unshare',
        '--mount',
        '--pid',
        '--fork',
        '--kill-child',
        '--mount-proc',
        '--propagation',
        'private',
        'sh',
        '-c',
        script,
      ],
      { stdio: ['pipe', 'ignore', 'pipe'] },
    );
    live.proc = proc;
    let err = '';
    proc.stderr?.on('data', (d) => (err += d));
    for (let k = 0; k < 200 && proc.exitCode === null; k++) {
      if (await banner(address, 22)) {
        // unshare's only child is the host's pid 1 (the shell that exec'd sshd).
        const kids = fs
          .readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8')
          .trim()
          .split(/\s+/);
        live.init = Number(kids[0]);
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const logText = fs.existsSync(sshdLog) ? fs.readFileSync(sshdLog, 'utf8') : '';
    throw new Error(`host ${name} (${ns}, ${address}) did not start: ${err}${logText}`.trim());
  };

  try {
    await Promise.all(opts.names.map((n, i) => start(n, i)));
  } catch (e) {
    killAll();
    process.removeListener('exit', onExit);
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const hosts = lives
    .map((l) => l.host)
    .sort((a, b) => opts.names.indexOf(a.name) - opts.names.indexOf(b.name));
  const knownHostsPath = path.join(dir, 'known_hosts');
  fs.writeFileSync(knownHostsPath, hosts.map((h) => `${h.address} ${h.hostKeyPub}`).join('\n') + '\n');
  const liveOf = (name: string) => {
    const l = lives.find((x) => x.host.name === name);
    if (!l) throw new Error(`no e2e host ${name}`);
    return l;
  };
  const exec: NetnsSandbox['exec'] = (name, command, o = {}) => {
    const l = liveOf(name);
    if (!l.init || stopped)
      return Promise.resolve({ code: -1, stdout: '', stderr: `host ${name} is not running` });
    return run(
      'nsenter',
      ['-t', String(l.init), '-m', '-p', '-n', 'sh', '-c', `cd ${sq(l.host.root)} && ${command}`],
      {
        timeoutMs: o.timeoutMs,
        env: {
          PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          HOME: l.host.root,
          LANG: 'C.UTF-8',
        },
      },
    );
  };

  return {
    dir,
    user: os.userInfo().username,
    userKeyPath,
    knownHostsPath,
    hosts,
    host: (name) => liveOf(name).host,
    initPid: (name) => (stopped ? undefined : liveOf(name).init),
    exec,
    async http(name, port, urlPath, timeoutMs = 3000) {
      try {
        const res = await fetch(`http://${liveOf(name).host.address}:${port}${urlPath}`, {
          signal: AbortSignal.timeout(timeoutMs),
        });
        return { status: res.status, body: await res.text() };
      } catch (e) {
        return { status: 0, body: String((e as Error).cause ?? e) };
      }
    },
    async stop() {
      if (stopped) return;
      // Removing the containers first frees what outlives a killed namespace: cgroups, and CNI's iptables
      // rules and IP leases. Then the kill takes sshd and everything else.
      if (containers)
        await Promise.all(
          lives.map((l) => exec(l.host.name, 'podman rm -a -f -t 0 >/dev/null 2>&1', { timeoutMs: 30_000 })),
        );
      stopped = true;
      await Promise.all(
        lives.map(async (l) => {
          if (!l.proc || l.proc.exitCode !== null) return;
          const gone = new Promise((r) => l.proc?.once('exit', r));
          l.proc.kill('SIGKILL');
          await gone;
        }),
      );
      killAll();
      process.removeListener('exit', onExit);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
