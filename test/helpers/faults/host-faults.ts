import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { keygen } from '../sshd';
import type { NetnsSandbox } from '../netns-hosts';

/**
 * Faults injected into one network-namespace host while a deploy runs against it: held commands, killed SSH
 * sessions, a stopped sshd, a cut or slow or lossy link, a rotated host key, a refused key, a small disk. Every
 * change lives inside the host's own namespaces (iptables rules, mounts, processes), so it goes when the host does.
 */

export const GATE = path.join(__dirname, 'gate.sh');
export const NFQ_DELAY_SOURCE = path.join(__dirname, 'nfq-delay.c');

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Packages the fault hosts need beyond the bare netns hosts: iptables, and a compiler for the delay program. */
const PACKAGES = ['iptables', 'gcc', 'libc6-dev', 'libnetfilter-queue-dev'];

/** Builds the NFQUEUE delay program into `outDir` (installing what it needs as root); returns its path. */
export function buildDelayProgram(outDir: string): string {
  const bin = path.join(outDir, 'nfq-delay');
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= fs.statSync(NFQ_DELAY_SOURCE).mtimeMs) return bin;
  const have = () =>
    fs.existsSync('/usr/include/libnetfilter_queue/libnetfilter_queue.h') &&
    fs.existsSync('/usr/sbin/iptables') &&
    spawnSync('gcc', ['--version']).status === 0;
  if (!have()) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () =>
      spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...PACKAGES], {
        stdio: 'inherit',
        env,
      }).status === 0;
    if (!install()) {
      spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
      if (!install()) throw new Error(`the fault matrix needs: apt-get install -y ${PACKAGES.join(' ')}`);
    }
  }
  fs.mkdirSync(outDir, { recursive: true });
  execFileSync('gcc', ['-O2', '-Wall', '-o', bin, NFQ_DELAY_SOURCE, '-lnetfilter_queue', '-lnfnetlink'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return bin;
}

export class HostFaults {
  private readonly delays: ChildProcess[] = [];
  constructor(
    private readonly sb: NetnsSandbox,
    readonly name: string,
    private readonly delayProgram?: string,
  ) {
    fs.mkdirSync(this.ctl, { recursive: true });
  }

  private get host() {
    return this.sb.host(this.name);
  }

  /** Where the host's gate (gate.sh) and the stack's hold points look for their instructions. */
  get ctl(): string {
    return path.join(this.sb.host(this.name).root, 'faults');
  }

  private async sh(command: string, timeoutMs = 30_000): Promise<string> {
    const r = await this.sb.exec(this.name, command, { timeoutMs });
    if (r.code !== 0) throw new Error(`${this.name}: ${command}: exit ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout.trim();
  }

  /** The stack's `up` (or `tests`) of `release` ("any": the first one) waits at its hold point until go(). */
  hold(point: 'up' | 'tests', release: string): void {
    fs.writeFileSync(path.join(this.ctl, `hold-${point}`), release);
  }

  /** The first SSH command (or SFTP session: "sftp-server") whose text contains `pattern` waits until go(). */
  holdCommand(pattern: string): void {
    fs.writeFileSync(path.join(this.ctl, 'hold-cmd'), pattern);
  }

  /** Waits until something holds at `point` ("cmd" for holdCommand); returns its pid in the host's namespace. */
  async held(point: 'up' | 'tests' | 'cmd', timeoutMs = 60_000): Promise<number> {
    const file = path.join(this.ctl, `held-${point}.pid`);
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (fs.existsSync(file)) return Number(fs.readFileSync(file, 'utf8').trim());
      await sleep(50);
    }
    throw new Error(`${this.name}: nothing reached the "${point}" hold point within ${timeoutMs / 1000}s`);
  }

  isHolding(point: 'up' | 'tests' | 'cmd'): boolean {
    return fs.existsSync(path.join(this.ctl, `held-${point}.pid`));
  }

  /** Lets everything held go on, and nothing more is held. */
  go(): void {
    fs.writeFileSync(path.join(this.ctl, 'go'), '');
  }

  /** Whether a process (pid in the host's namespace) still runs there, zombies excepted. */
  async alive(pid: number): Promise<boolean> {
    const r = await this.sb.exec(this.name, `ps -o stat= -p ${pid}`);
    return r.code === 0 && r.stdout.trim() !== '' && !r.stdout.trim().startsWith('Z');
  }

  /**
   * Kills, with SIGKILL, the sshd process serving the SSH connection that runs `pid`: the client's connection
   * dies, while the command itself, like any process whose session died without a terminal, runs on.
   */
  async killSessionOf(pid: number): Promise<string> {
    return this.sh(
      [
        `p=${pid}`,
        'while [ "$p" -gt 1 ]; do',
        '  a=$(tr "\\0" " " < /proc/$p/cmdline 2>/dev/null)',
        '  case "$a" in "sshd: "*@*|"sshd-session: "*@*) kill -KILL "$p"; echo "killed $p: $a"; exit 0;; esac',
        "  p=$(awk '{print $4}' /proc/$p/stat 2>/dev/null || echo 0)",
        'done',
        `echo "no sshd session above ${pid}" >&2; exit 1`,
      ].join('\n'),
    );
  }

  /** Stops the sshd listener as stopping the service would: open sessions live on, new ones are refused. */
  async stopSshd(): Promise<void> {
    const pidFile = path.join(this.host.dir, 'sshd.pid');
    await this.sh(
      `p=$(cat ${sq(pidFile)}); kill -TERM "$p"; i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; rm -f ${sq(pidFile)}`,
    );
  }

  async startSshd(): Promise<void> {
    const h = this.host;
    await this.sh(`/usr/sbin/sshd -f ${sq(h.sshdConfigPath)} -E ${sq(path.join(h.dir, 'sshd.log'))}`);
    // The daemon writes its pid file once it listens.
    const until = Date.now() + 10_000;
    while (!fs.existsSync(path.join(h.dir, 'sshd.pid'))) {
      if (Date.now() > until) throw new Error(`${this.name}: sshd did not start`);
      await sleep(50);
    }
  }

  /** A new ed25519 host key, as a reinstalled host would have; returns its public key line. */
  async rotateHostKey(): Promise<string> {
    await this.stopSshd();
    fs.rmSync(this.host.hostKeyPath, { force: true });
    fs.rmSync(this.host.hostKeyPath + '.pub', { force: true });
    const pub = keygen(this.host.hostKeyPath);
    await this.startSshd();
    return pub;
  }

  /** The host no longer accepts the deploy key. */
  refuseAuth(): void {
    fs.writeFileSync(this.host.authorizedKeysPath, '');
  }

  linkDown(): void {
    execFileSync('ip', ['-n', this.host.ns, 'link', 'set', this.host.iface, 'down']);
  }

  linkUp(): void {
    execFileSync('ip', ['-n', this.host.ns, 'link', 'set', this.host.iface, 'up']);
  }

  private iptables(...args: string[]): void {
    execFileSync('nsenter', [`--net=/run/netns/${this.host.ns}`, 'iptables', '-w', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Every packet reaching the host waits `ms` first (iptables NFQUEUE and the delay program). */
  async slowLink(ms: number): Promise<void> {
    if (!this.delayProgram) throw new Error('no delay program was built for this host');
    const proc = spawn('nsenter', [`--net=/run/netns/${this.host.ns}`, this.delayProgram, '7', String(ms)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.delays.push(proc);
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nfq-delay did not start: ${out}`)), 10_000);
      const on = (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout?.on('data', on);
      proc.stderr?.on('data', on);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nfq-delay exited (${code}): ${out}`));
      });
    });
    this.iptables(
      '-I',
      'INPUT',
      '-i',
      this.host.iface,
      '-j',
      'NFQUEUE',
      '--queue-num',
      '7',
      '--queue-bypass',
    );
  }

  /** The delay program is still holding packets (it ran the whole time it was meant to). */
  get slowLinkRunning(): boolean {
    return this.delays.length > 0 && this.delays.every((p) => p.exitCode === null && p.signalCode === null);
  }

  /** Drops each packet to and from the host with probability `p`. */
  packetLoss(p: number): void {
    const prob = String(p);
    this.iptables(
      '-I',
      'INPUT',
      '-i',
      this.host.iface,
      '-m',
      'statistic',
      '--mode',
      'random',
      '--probability',
      prob,
      '-j',
      'DROP',
    );
    this.iptables(
      '-I',
      'OUTPUT',
      '-o',
      this.host.iface,
      '-m',
      'statistic',
      '--mode',
      'random',
      '--probability',
      prob,
      '-j',
      'DROP',
    );
  }

  /** Clears iptables rules and stops the delay program: the link is clean again. */
  clearNetwork(): void {
    try {
      this.iptables('-F');
    } catch {
      /* the namespace is gone already */
    }
    for (const p of this.delays.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
  }

  /** Puts `dir` (created if needed) on a filesystem of its own of `size` (e.g. "3m") inside the host. */
  async smallDisk(dir: string, size: string): Promise<void> {
    await this.sh(`mkdir -p ${sq(dir)} && mount -t tmpfs -o size=${size} tmpfs ${sq(dir)}`);
  }

  /** Fills the filesystem holding `dir` to the last block. */
  async fillDisk(dir: string): Promise<void> {
    await this.sh(
      `dd if=/dev/zero of=${sq(`${dir}/.fill`)} bs=4096 2>/dev/null; sync; df -k ${sq(dir)} >/dev/null`,
    );
  }

  /** Stops what this helper started on the machine (the namespace itself is the sandbox's to remove). */
  dispose(): void {
    for (const p of this.delays.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
  }
}
