import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Report } from '../../src/report/types';
import { CLI, CliProcess, killAllClis, readJson, type Exit } from '../helpers/faults/cli';
import { GATE, HostFaults } from '../helpers/faults/host-faults';
import { readHostState, type HostState } from '../helpers/faults/host-state';
import { startNetnsHosts, type NetnsSandbox } from '../helpers/netns-hosts';
import { recordCell } from './matrix';

/**
 * One cell of the fault matrix = fresh namespaced hosts (thinkpad = staging, rtx1080 = production, vps = public),
 * a project deployed once (v1) through the CLI, then the cell's fault while the CLI deploys v2, and checks of the
 * final status and of what every host really is afterwards. Hosts, CLIs and helpers go away after every cell,
 * passed or failed.
 */

export const HOSTS = ['thinkpad', 'rtx1080', 'vps'] as const;
export type HostName = (typeof HOSTS)[number];
export const OUT = path.join(__dirname, 'output');
export const DELAY_BIN = path.join(OUT, 'bin', 'nfq-delay');
const STACK = path.join(__dirname, 'stack');
const PORT = 8080;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function git(repo: string, args: string[]): string {
  return execFileSync(
    'git',
    ['-c', 'user.name=faults', '-c', 'user.email=faults@example.com', '-c', 'commit.gpgsign=false', ...args],
    { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  ).trim();
}

export interface RunResult {
  exit: Exit;
  report?: Report;
  output: string;
  label: string;
}

/** What a host must be after the cell: the release it runs (by label, null for none), and what else. */
export interface HostExpect {
  /** "as-reported": the release the run's report says the host ends on (which must then be true). */
  release: string | null | 'as-reported';
  /** Nothing is checked on this host (it was cut off; the cell checks it later, after a repair). */
  unchecked?: boolean;
  /** The deploy lock is still held (a host the run could not reach). */
  lock?: boolean;
  /** Processes of the run may still be there (the host was unreachable when the run ended). */
  leftovers?: boolean;
}

export class Cell {
  readonly faults: Record<HostName, HostFaults>;
  readonly releases: Record<string, string> = {};
  readonly secrets: Record<string, string> = {};
  readonly repo: string;
  readonly configPath: string;
  readonly dir: string;
  private runs = 0;
  private configEdit: (c: string) => string = (c) => c;

  constructor(
    readonly sb: NetnsSandbox,
    readonly id: string,
  ) {
    this.dir = path.join(OUT, 'cells', id);
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.mkdirSync(this.dir, { recursive: true });
    this.faults = Object.fromEntries(
      HOSTS.map((h) => [h, new HostFaults(sb, h, fs.existsSync(DELAY_BIN) ? DELAY_BIN : undefined)]),
    ) as Record<HostName, HostFaults>;
    this.repo = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-faults-repo-'));
    fs.cpSync(STACK, path.join(this.repo, 'stack'), { recursive: true });
    this.configPath = path.join(this.repo, 'homelab-deploy.yml');
    this.writeConfig();
    git(this.repo, ['init', '-q', '-b', 'main']);
  }

  /** A release id by its label (v1, v2), for messages. */
  label(id: string | null): string {
    return id === null ? 'nothing' : (Object.keys(this.releases).find((k) => this.releases[k] === id) ?? id);
  }

  /** The host's deploy path (inside the host). */
  path(host: HostName): string {
    return path.join(this.sb.host(host).root, 'srv', 'faults');
  }

  config(): string {
    const hosts = HOSTS.map((h) => {
      const s = this.sb.host(h);
      return `  ${h}:\n    address: ${s.address}\n    path: ${this.path(h)}\n    vars: { port: ${PORT} }`;
    }).join('\n');
    return this.configEdit(`version: 1
project: faults
source: stack
defaults:
  ssh: { user: ${this.sb.user}, key: ${this.sb.userKeyPath}, known_hosts: ${this.sb.knownHostsPath}, connect_timeout: 5s, keepalive_interval: 1s, keepalive_count: 3 }
  deploy: { strategy: command, up: sh ./up.sh, down: sh ./down.sh, timeout: 40s }
  runtime_check: node --version
  min_free_disk: 1MB
hosts:
${hosts}
secrets:
  keys: [HD_FAULT_SECRET]
health:
  - name: app
    http: "http://{{host.address}}:{{host.vars.port}}/health"
    expect: { status: 200, json: { status: ok }, release: "json:release" }
    interval: 250ms
    retries: 8
    timeout: 2s
lock: { stale_after: 30s }
stages:
  - name: staging
    hosts: [thinkpad]
    tests: { run: sh ./smoke.sh, on: thinkpad, timeout: 40s }
  - name: production
    hosts: [rtx1080]
    on_failure: rollback-all
  - name: public
    hosts: [vps]
    retry: { attempts: 3, delay: 1s, factor: 2 }
    on_failure: rollback-stage
`);
  }

  /** Rewrites the config, optionally edited (text replacements on the template above). */
  writeConfig(edit?: (c: string) => string): void {
    if (edit) this.configEdit = edit;
    fs.writeFileSync(this.configPath, this.config());
  }

  /** Commits the stack as release `label` (with extra files, e.g. a large one), returns its release id. */
  commit(label: string, files: Record<string, string | Buffer> = {}): string {
    fs.writeFileSync(path.join(this.repo, 'stack', 'VERSION'), label + '\n');
    for (const [f, content] of Object.entries(files))
      fs.writeFileSync(path.join(this.repo, 'stack', f), content);
    git(this.repo, ['add', '-A']);
    git(this.repo, ['commit', '-q', '-m', label]);
    this.releases[label] = git(this.repo, ['rev-parse', 'HEAD']).slice(0, 12);
    this.secrets[label] ??= `fault-secret-${label}-${randomBytes(6).toString('hex')}`;
    return this.releases[label];
  }

  env(secretLabel: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LANG: 'C.UTF-8',
      USER: 'faults',
      HD_FAULT_SECRET: this.secrets[secretLabel],
      ...extra,
    };
  }

  /** Starts `homelab-deploy run` deploying HEAD with the secret of `label`. */
  start(
    label: string,
    args: string[] = [],
    extraEnv: NodeJS.ProcessEnv = {},
  ): CliProcess & { reportFile: string } {
    const n = ++this.runs;
    const reportFile = path.join(this.dir, `report-${n}-${label}.json`);
    fs.rmSync(reportFile, { force: true });
    const proc = new CliProcess(
      `run ${n} (${label})`,
      CLI,
      ['run', '--config', this.configPath, '--report-file', reportFile, ...args],
      { env: this.env(label, extraEnv), cwd: this.repo },
    ) as CliProcess & { reportFile: string };
    proc.reportFile = reportFile;
    void proc.exited.then(() => fs.writeFileSync(path.join(this.dir, `run-${n}-${label}.log`), proc.output));
    return proc;
  }

  async finish(
    proc: CliProcess & { reportFile: string },
    label: string,
    timeoutMs = 180_000,
  ): Promise<RunResult> {
    const exit = await proc.exit(timeoutMs);
    return { exit, report: readJson<Report>(proc.reportFile), output: proc.output, label };
  }

  async deploy(label: string, args: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    return this.finish(this.start(label, args, extraEnv), label);
  }

  /** `homelab-deploy status --json` as an operator would run it after the run. */
  async status(): Promise<Record<string, unknown>[]> {
    const proc = new CliProcess('status', CLI, ['status', '--config', this.configPath, '--json'], {
      env: this.env('v1'),
      cwd: this.repo,
    });
    await proc.exit(60_000);
    // stdout alone: warnings (a host that needs a human) go to stderr after the document.
    const start = proc.stdout.indexOf('[');
    try {
      return JSON.parse(proc.stdout.slice(start)) as Record<string, unknown>[];
    } catch {
      throw new Error(`status --json printed no JSON list: ${proc.output}`);
    }
  }

  async state(host: HostName): Promise<HostState> {
    return readHostState(this.sb, host, this.path(host), this.secrets);
  }

  /**
   * What is wrong on each host against `expect` (empty when all is right). Processes and locks are given up to
   * `settleMs` to go away by themselves (an SSH session ending after its client closed, a handed-over rollback
   * finishing); whatever is still there then is reported.
   */
  async hostProblems(
    expect: Record<HostName, HostExpect>,
    settleMs = 6_000,
    report?: Report,
  ): Promise<string[]> {
    const until = Date.now() + settleMs;
    const name = (id: string | null) =>
      id === null ? 'none' : (Object.keys(this.releases).find((k) => this.releases[k] === id) ?? id);
    const resolve = (h: HostName, e: HostExpect): HostExpect => {
      if (e.release !== 'as-reported') return e;
      const after = report?.hosts.find((f) => f.host === h)?.after;
      if (after === undefined) return { ...e, release: 'a release the report names (it names none)' };
      return { ...e, release: after === null ? null : name(after) };
    };
    for (;;) {
      const problems: string[] = [];
      for (const h of HOSTS) {
        const e = resolve(h, expect[h]);
        if (e.unchecked) continue;
        const s = await this.state(h);
        const want = e.release === null ? null : (this.releases[e.release as string] ?? e.release);
        if (s.current !== want)
          problems.push(`${h}: current is ${name(s.current)}, expected ${e.release ?? 'none'}`);
        if (e.release !== null) {
          if (s.envHolds.join(',') !== e.release)
            problems.push(
              `${h}: env file holds the secret of [${s.envHolds.join(', ')}], expected ${e.release}`,
            );
          if (s.envMode !== '600')
            problems.push(`${h}: env file mode ${s.envMode ?? '(no file)'}, expected 600`);
        }
        if (!!s.lock !== !!e.lock)
          problems.push(
            e.lock
              ? `${h}: no lock, expected the run's lock`
              : `${h}: lock left: ${s.lock || '(no owner record)'}`,
          );
        if (s.debris.length) problems.push(`${h}: left in the deploy path: ${s.debris.join(', ')}`);
        const servers = s.servers.map((r) => name(r));
        const wantServers = e.release === null ? [] : [e.release as string];
        if (servers.join(',') !== wantServers.join(','))
          problems.push(
            `${h}: the service runs [${servers.join(', ')}], expected [${wantServers.join(', ')}]`,
          );
        if (s.others.length && !e.leftovers) problems.push(`${h}: processes left: ${s.others.join(' | ')}`);
      }
      if (problems.length === 0 || Date.now() > until) return problems;
      await sleep(500);
    }
  }

  /**
   * Lets every held command go on and waits until what was held has ended; then the hosts must still be as
   * expected (an orphaned command that was not killed would now switch its host's service).
   */
  async releaseHeld(timeoutMs = 30_000): Promise<void> {
    const held: [HostFaults, number][] = [];
    for (const h of HOSTS)
      for (const point of ['up', 'tests', 'cmd'] as const)
        if (this.faults[h].isHolding(point)) held.push([this.faults[h], await this.faults[h].held(point)]);
    for (const h of HOSTS) this.faults[h].go();
    const until = Date.now() + timeoutMs;
    for (const [f, pid] of held) while ((await f.alive(pid)) && Date.now() < until) await sleep(200);
    await sleep(1500); // an `up` that went on starts its server in the background
  }

  dispose(): void {
    for (const h of HOSTS) this.faults[h].dispose();
    fs.rmSync(this.repo, { recursive: true, force: true });
  }
}

/** The final status: exit code, report status (and error class), and that the report tells each host's truth. */
export async function statusProblems(
  cell: Cell,
  r: RunResult,
  want: {
    exit: number | number[];
    status?: Report['status'] | Report['status'][];
    errorClass?: string;
    host?: string;
  },
): Promise<string[]> {
  const problems: string[] = [];
  const exits = Array.isArray(want.exit) ? want.exit : [want.exit];
  const tail = r.output.trim().split('\n').slice(-6).join(' | ');
  if (!exits.includes(r.exit.code ?? -1))
    problems.push(
      `${r.label}: exit ${r.exit.code ?? r.exit.signal}, expected ${exits.join(' or ')} (output: ${tail})`,
    );
  if (want.status !== undefined) {
    const statuses = Array.isArray(want.status) ? want.status : [want.status];
    if (!r.report) problems.push(`${r.label}: no report file written`);
    else if (!statuses.includes(r.report.status))
      problems.push(
        `${r.label}: status ${r.report.status}, expected ${statuses.join(' or ')} (error: [${r.report.error?.class}] ${r.report.error?.message})`,
      );
  }
  if (want.errorClass !== undefined && r.report && r.report.error?.class !== want.errorClass)
    problems.push(
      `${r.label}: error class ${r.report.error?.class ?? '(none)'}, expected ${want.errorClass}: ${r.report.error?.message ?? ''}`,
    );
  if (want.host !== undefined && r.report?.error && r.report.error.host !== want.host)
    problems.push(`${r.label}: error names host ${r.report.error.host ?? '(none)'}, expected ${want.host}`);
  // Wherever the report claims to know a host's release, the host must agree ("unknown" claims nothing).
  const wrong: string[] = [];
  for (const f of r.report?.hosts ?? []) {
    if (f.state === 'unknown') continue;
    const real = (await cell.state(f.host as HostName)).current;
    if (real !== f.after)
      wrong.push(
        `${f.host} runs ${cell.label(f.after)} (state ${f.state}) while it runs ${cell.label(real)}`,
      );
  }
  if (wrong.length) problems.push(`${r.label}: the report says ${wrong.join('; ')}`);
  return problems;
}

export function fail(problems: string[]): void {
  if (problems.length) throw new Error(problems.map((p) => `- ${p}`).join('\n'));
}

let shared: { sb?: NetnsSandbox } = {};
process.once('exit', () => killAllClis());

/**
 * Registers one matrix cell as a jest test: fresh hosts, v1 deployed and checked, then `body`. Its result goes
 * into the matrix table (pass/fail, seconds) whatever happens.
 */
export function cell(
  fault: string,
  phase: string,
  body: (c: Cell) => Promise<void>,
  opts: { timeoutMs?: number; baseline?: boolean; before?: (c: Cell) => Promise<void> } = {},
): void {
  const id = `${fault}--${phase}`
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
  test(
    `${fault} × ${phase}`,
    async () => {
      const t0 = Date.now();
      let error: unknown;
      let c: Cell | undefined;
      try {
        shared.sb = await startNetnsHosts({ names: [...HOSTS], containers: false, forceCommand: GATE });
        c = new Cell(shared.sb, id);
        await opts.before?.(c);
        if (opts.baseline !== false) {
          c.commit('v1');
          const r = await c.deploy('v1');
          const problems = [
            ...(await statusProblems(c, r, { exit: 0, status: 'success' })),
            ...(await c.hostProblems({
              thinkpad: { release: 'v1' },
              rtx1080: { release: 'v1' },
              vps: { release: 'v1' },
            })),
          ];
          if (problems.length)
            throw new Error(`the v1 deploy before the fault went wrong:\n${problems.join('\n')}`);
        }
        await body(c);
      } catch (err) {
        error = err;
      } finally {
        killAllClis();
        c?.dispose();
        await shared.sb?.stop().catch(() => undefined);
        shared = {};
        recordCell({
          fault,
          phase,
          ok: error === undefined,
          seconds: (Date.now() - t0) / 1000,
          error: error === undefined ? undefined : String((error as Error).message ?? error),
        });
      }
      if (error !== undefined) throw error;
    },
    opts.timeoutMs ?? 240_000,
  );
}

/** Every host on release `label` (or as given per host). */
export function all(
  label: string | null,
  per: Partial<Record<HostName, HostExpect>> = {},
): Record<HostName, HostExpect> {
  return {
    thinkpad: per.thinkpad ?? { release: label },
    rtx1080: per.rtx1080 ?? { release: label },
    vps: per.vps ?? { release: label },
  };
}

/** Makes `host`'s service answer its health check with 503 while it runs release `label`. */
export function breakHealth(c: Cell, host: HostName, label: string): void {
  fs.mkdirSync(c.path(host), { recursive: true });
  fs.writeFileSync(path.join(c.path(host), 'FAULT'), c.releases[label] + '\n');
}

/** The entry `status --json` shows for a host. */
export async function statusOf(c: Cell, host: HostName): Promise<Record<string, unknown> | undefined> {
  return (await c.status()).find((s) => s.host === host || s.target === host);
}
