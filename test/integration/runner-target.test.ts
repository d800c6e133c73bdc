import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Config, HealthCheck, RunnerTargetConfig } from '../../src/config/types';
import { DeployError } from '../../src/errors';
import { probeHttp } from '../../src/health/http';
import { makeContext, type RunContext } from '../../src/run/context';
import { Redactor } from '../../src/secrets/redact';
import { createRunnerTarget } from '../../src/targets/runner/runner-target';
import { groupMembers, ProcessGroups, runLocal } from '../../src/targets/runner/exec';
import { DirStateStore } from '../../src/targets/state/dir-store';
import { openStateStore } from '../../src/targets/state/open';
import type { HealthSubject, Target } from '../../src/targets/target';
import { renderTemplate } from '../../src/util/template';

const PLATFORM = path.resolve(__dirname, '../fixtures/runner-platform/platform.sh');
const SECRET = 'tok-5ecr3t-V4lue-9f2c';
const DB_PASSWORD = 'db-pa55word-81aa';

const COMMIT_A = 'a'.repeat(40);
const COMMIT_B = 'b'.repeat(40);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** What the fake platform serves right now, read over HTTP (not from anything the target reports). */
function served(port: number, p = '/api/health'): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      })
      .on('error', reject);
  });
}

/** A pid is gone when /proc has no live (non-zombie) process for it. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitFor<T>(fn: () => T | undefined, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const check = (over: Partial<HealthCheck>): HealthCheck => ({
  name: 'ready',
  kind: 'http',
  target: 'http://127.0.0.1:{{target.vars.port}}/api/ready',
  method: 'GET',
  headers: {},
  expect: { status: [200], json: { ready: true } },
  timeoutMs: 2000,
  intervalMs: 100,
  retries: 2,
  successes: 1,
  startPeriodMs: 0,
  ...over,
});

/**
 * Runs an HTTP check against a HealthSubject: the subject's vars fill the URL, its release is what
 * `expect.release` must see, and the real HTTP probe does the request. (src/health/run.ts takes an SSH host
 * today; once it takes a HealthSubject this helper becomes a call to runHealthCheck.)
 */
async function checkHttp(
  ctx: RunContext,
  subject: HealthSubject,
  c: HealthCheck,
): Promise<{ ok: boolean; detail: string }> {
  const url = renderTemplate(c.target, subject.vars, `health check "${c.name}"`);
  let last = { ok: false, detail: 'not run' };
  for (let i = 0; i <= c.retries; i++) {
    last = await probeHttp(c, url, subject.release, {
      timeoutMs: c.timeoutMs,
      signal: ctx.signal,
      redact: (t) => ctx.redactor.redact(t),
    });
    if (last.ok) return last;
    await new Promise((r) => setTimeout(r, c.intervalMs));
  }
  return last;
}

interface World {
  dir: string;
  platformState: string;
  stateDir: string;
  port: number;
  target(opts?: {
    commit?: string;
    token?: string;
    vars?: Record<string, string>;
    timeoutMs?: number;
    signal?: AbortSignal;
    down?: string;
  }): { ctx: RunContext; t: Target; store: DirStateStore };
  livePids(): number[];
}

const worlds: World[] = [];

async function world(): Promise<World> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-runner-'));
  const platformState = path.join(dir, 'platform');
  const stateDir = path.join(dir, 'state');
  const port = await freePort();
  const w: World = {
    dir,
    platformState,
    stateDir,
    port,
    target(o = {}) {
      const cfg: RunnerTargetConfig & { down?: string } = {
        kind: 'runner',
        name: 'shop',
        labels: {},
        vars: { state_dir: platformState, port: String(port), ...o.vars },
        current: `${PLATFORM} current`,
        up: `${PLATFORM} up`,
        rollback: `${PLATFORM} rollback`,
        snapshot: `${PLATFORM} snapshot`,
        down: o.down,
        cwd: dir,
        timeoutMs: o.timeoutMs ?? 30_000,
        state: { kind: 'dir', path: stateDir },
      };
      const config: Config = {
        file: path.join(dir, 'deploy.yml'),
        dir,
        project: 'afu9',
        source: dir,
        hosts: {},
        targets: { shop: cfg },
        stages: [],
        verify: { health: [], onFailure: 'none' },
        lock: { staleAfterMs: 15 * 60_000, takeoverStale: false, waitMs: 0 },
        parallel: 1,
        checkpointAbove: 50,
      };
      const redactor = new Redactor();
      redactor.add(SECRET, 'DEPLOY_TOKEN');
      redactor.add(DB_PASSWORD, 'DB_PASSWORD');
      const token = o.token ?? `tok${Math.random().toString(16).slice(2, 10)}`;
      const ctx = makeContext(config, {
        runToken: token,
        env: { ...process.env, DEPLOY_TOKEN: SECRET, DB_PASSWORD },
        redactor,
        commit: o.commit ?? COMMIT_A,
        run: { id: `run-${token}`, url: `https://github.example/run/${token}`, actor: 'alice' },
        signal: o.signal,
      });
      const store = openStateStore(cfg.state, cfg.name) as DirStateStore;
      return { ctx, t: createRunnerTarget(ctx, cfg, store), store };
    },
    livePids() {
      const f = path.join(platformState, 'service.pid');
      return fs.existsSync(f) ? [Number(fs.readFileSync(f, 'utf8'))].filter(alive) : [];
    },
  };
  worlds.push(w);
  return w;
}

afterEach(() => {
  // The fake platform's service runs in a session of its own (like a real platform's tasks): stop it.
  for (const w of worlds.splice(0)) {
    for (const pid of w.livePids()) process.kill(pid, 'SIGKILL');
    fs.rmSync(w.dir, { recursive: true, force: true });
  }
});

/** One full deploy of `commit` the way the pipeline drives a target: pre-flight, snapshot, deploy, health, settle. */
async function deployOnce(
  w: World,
  commit: string,
  opts: { vars?: Record<string, string>; token?: string } = {},
) {
  const { ctx, t, store } = w.target({ commit, ...opts });
  const pre = await t.preflight('staging');
  const snap = await t.snapshot(pre.current, { infra: true });
  const dep = await t.deploy({
    stage: 'staging',
    previous: pre.current,
    prepared: pre.prepared,
    checkBeforeActivate: async () => [],
  });
  const health = dep.ok ? await checkHttp(ctx, t.healthSubject('staging'), check({})) : undefined;
  return { ctx, t, store, pre, snap, dep, health };
}

describe('runner command target against a fake platform', () => {
  it('deploys: the version file and the served version are the new release, recorded as the rollback point', async () => {
    const w = await world();
    const first = await deployOnce(w, COMMIT_A);
    expect(first.pre).toMatchObject({ current: null, onNew: false, lock: 'acquired' });
    expect(first.snap.point).toMatchObject({ release: COMMIT_A.slice(0, 12), previous: null });
    // The snapshot command's last line names the backup; the backup exists on the platform.
    expect(first.snap.point?.infraSnapshot).toMatch(/^rds-backup-1-\d+$/);
    expect(fs.existsSync(path.join(w.platformState, 'backups', first.snap.point?.infraSnapshot ?? '-'))).toBe(
      true,
    );
    expect(first.dep).toMatchObject({ ok: true, switched: true, version: 'task-def:1' });
    expect(first.health?.ok).toBe(true);
    await first.t.settle({ stage: 'staging', previous: null, unchanged: false, durationMs: 5 });
    expect(await first.t.releaseLock()).toBe(true);

    const second = await deployOnce(w, COMMIT_B);
    expect(second.pre).toMatchObject({ current: 'task-def:1', onNew: false, lock: 'acquired' });
    expect(second.snap.point?.previous).toBe('task-def:1');
    expect(second.dep).toMatchObject({ ok: true, version: 'task-def:2' });
    // `up` saw the release and the version it replaces.
    expect(second.dep.steps[0].output).toContain(
      `deploying ${COMMIT_B.slice(0, 12)} (${COMMIT_B}) to stage staging as task-def:2, previous 'task-def:1'`,
    );
    // expect.release: the new release answers, not the old one.
    const marker = await checkHttp(
      second.ctx,
      second.t.healthSubject('staging'),
      check({
        name: 'release',
        target: 'http://127.0.0.1:{{host.vars.port}}/api/health',
        expect: { release: { in: 'json', key: 'release' } },
      }),
    );
    expect(marker).toMatchObject({ ok: true });
    // Every command sees the run's values as HD_* variables and the target's vars as HD_VAR_<NAME>.
    const env = await second.t
      .healthSubject('staging')
      .exec(
        'echo "$HD_PROJECT|$HD_TARGET|$HD_STAGE|$HD_RELEASE|$HD_COMMIT|$HD_REF|$HD_PREVIOUS|$HD_VERSION|$HD_VAR_PORT"',
        {
          timeoutMs: 5000,
          signal: second.ctx.signal,
        },
      );
    expect(env.stdout.trim()).toBe(
      `afu9|shop|staging|${COMMIT_B.slice(0, 12)}|${COMMIT_B}|${COMMIT_B}|task-def:1|task-def:2|${w.port}`,
    );
    await second.t.settle({ stage: 'staging', previous: 'task-def:1', unchanged: false });
    expect(await second.t.releaseLock()).toBe(true);

    expect(fs.readFileSync(path.join(w.platformState, 'live'), 'utf8').trim()).toBe('task-def:2');
    const now = await served(w.port);
    expect(now.body).toMatchObject({ version: 'task-def:2', release: COMMIT_B.slice(0, 12) });
    const point = await second.store.readRollbackPoint('shop', COMMIT_B.slice(0, 12));
    expect(point).toMatchObject({ previous: 'task-def:1', deployed: 'task-def:2' });
    const log = (await second.t.readReleaseLog())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.filter((l) => l.result === 'deployed').map((l) => [l.release, l.version])).toEqual([
      [COMMIT_A.slice(0, 12), 'task-def:1'],
      [COMMIT_B.slice(0, 12), 'task-def:2'],
    ]);
    const status = await second.t.status();
    expect(status).toMatchObject({
      kind: 'runner',
      reachable: true,
      current: 'task-def:2',
      previous: 'task-def:1',
      lock: { held: false },
      releases: ['task-def:2', 'task-def:1'],
    });
  });

  it('a health failure rolls back to the recorded version: the old release serves again', async () => {
    const w = await world();
    const a = await deployOnce(w, COMMIT_A);
    await a.t.settle({ stage: 'staging', previous: null, unchanged: false });
    await a.t.releaseLock();
    // The platform starts release B fine, but B reports not ready.
    fs.writeFileSync(path.join(w.platformState, 'broken'), COMMIT_B.slice(0, 12));

    const b = await deployOnce(w, COMMIT_B);
    expect(b.dep.ok).toBe(true);
    expect(b.health).toMatchObject({ ok: false });
    expect(b.health?.detail).toMatch(/expected status 200, got 503/);
    expect((await served(w.port, '/api/ready')).body).toMatchObject({ ready: false, version: 'task-def:2' });

    const point = await b.t.readRollbackPoint();
    expect(point?.previous).toBe('task-def:1');
    const rb = await b.t.rollback({ stage: 'staging', to: point?.previous ?? null });
    expect(rb.ok).toBe(true);
    expect(rb.steps.map((s) => s.name)).toEqual(['rollback', 'current']);
    expect(rb.actions).toContain('shop: `current` prints "task-def:1" after the rollback');
    // What serves now, over HTTP: the old revision and the old release.
    const now = await served(w.port, '/api/ready');
    expect(now).toEqual({
      status: 200,
      body: { ready: true, version: 'task-def:1', release: COMMIT_A.slice(0, 12) },
    });
    // The rollback's own health check: the subject for the old version expects the old release id.
    const old = b.t.healthSubject('staging', 'task-def:1');
    expect(old.release).toBe(COMMIT_A.slice(0, 12));
    expect(
      await checkHttp(
        b.ctx,
        old,
        check({
          target: 'http://127.0.0.1:{{target.vars.port}}/api/ready',
          expect: { json: { ready: true }, release: { in: 'header', key: 'x-release' } },
        }),
      ),
    ).toMatchObject({ ok: true });
    // A command check runs on the runner with the subject's HD_* values.
    const cmd = await old.exec(
      'test "$HD_VERSION" = "$(cat "$HD_VAR_STATE_DIR/live")" && echo "$HD_RELEASE"',
      {
        timeoutMs: 5000,
        signal: new AbortController().signal,
      },
    );
    expect(cmd).toMatchObject({ code: 0, stdout: `${COMMIT_A.slice(0, 12)}\n` });

    expect(await b.t.readCurrent()).toEqual({ version: 'task-def:1', onNew: false });
    const log = (await b.t.readReleaseLog())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.pop()).toMatchObject({
      event: 'rollback',
      to: 'task-def:1',
      version: 'task-def:1',
      result: 'rolled_back',
    });
    expect(await b.t.releaseLock()).toBe(true);
  });

  it('cancel mid-`up`: the whole process group is gone and the error is `cancelled`', async () => {
    const w = await world();
    const ac = new AbortController();
    const { t } = w.target({ vars: { up_sleep: '60' }, signal: ac.signal });
    const pre = await t.preflight('staging');
    await t.snapshot(pre.current, { infra: false });
    const started = Date.now();
    const deploying = t.deploy({
      stage: 'staging',
      previous: null,
      prepared: false,
      checkBeforeActivate: async () => [],
    });
    const pidsFile = path.join(w.platformState, 'up.pids');
    const pids = await waitFor(() => {
      const p = fs.existsSync(pidsFile)
        ? fs.readFileSync(pidsFile, 'utf8').trim().split('\n').map(Number)
        : [];
      return p.length === 2 ? p : undefined;
    });
    expect(pids.every(alive)).toBe(true);
    ac.abort();
    const err = await deploying.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DeployError);
    expect((err as DeployError).errorClass).toBe('cancelled');
    expect((err as DeployError).message).toMatch(/`up` on shop was cancelled: deploying/);
    expect(Date.now() - started).toBeLessThan(10_000);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(groupMembers(pids[0])).toEqual([]);
    expect(await t.releaseLock()).toBe(true);
  });

  it('a timeout kills the group (SIGKILL after the grace when TERM is ignored) and the error is `timeout`', async () => {
    const w = await world();
    const { t } = w.target({ vars: { up_sleep: '60', up_ignore_term: '1' }, timeoutMs: 1500 });
    const pre = await t.preflight('staging');
    const err = await t
      .deploy({
        stage: 'staging',
        previous: pre.current,
        prepared: false,
        checkBeforeActivate: async () => [],
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((err as DeployError).errorClass).toBe('timeout');
    expect((err as DeployError).message).toMatch(/`up` on shop did not finish within 1\.5s and was killed/);
    const pids = fs
      .readFileSync(path.join(w.platformState, 'up.pids'), 'utf8')
      .trim()
      .split('\n')
      .map(Number);
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    await t.releaseLock();
  });

  it('kill() stops every command the target still runs', async () => {
    const w = await world();
    const { t } = w.target({ vars: { up_sleep: '60' } });
    await t.preflight('staging');
    const deploying = t.deploy({
      stage: 'staging',
      previous: null,
      prepared: false,
      checkBeforeActivate: async () => [],
    });
    const pidsFile = path.join(w.platformState, 'up.pids');
    const pids = await waitFor(() => {
      const p = fs.existsSync(pidsFile)
        ? fs.readFileSync(pidsFile, 'utf8').trim().split('\n').map(Number)
        : [];
      return p.length === 2 ? p : undefined;
    });
    await t.kill();
    for (const pid of pids) expect(alive(pid)).toBe(false);
    await expect(deploying).rejects.toMatchObject({ errorClass: 'cancelled' });
    await t.releaseLock();
  });

  it('secrets in command output are masked in outcomes, errors, the release log and the audit log', async () => {
    const w = await world();
    const { ctx, t, store } = w.target({
      vars: { say: `token ${SECRET}`, up_fail: `auth ${SECRET} rejected` },
    });
    const pre = await t.preflight('staging');
    const snap = await t.snapshot(pre.current, { infra: true });
    const dep = await t.deploy({
      stage: 'staging',
      previous: null,
      prepared: false,
      checkBeforeActivate: async () => [],
    });
    expect(dep).toMatchObject({ ok: false, switched: true, failed: { name: 'up', exitCode: 3 } });
    expect(dep.failed?.output).toContain('cdk: token ***');
    expect(dep.failed?.output).toContain('cdk deploy failed: auth *** rejected');
    expect(snap.steps?.steps[0].output).toContain('backing up the database (password ***)');
    // A command check's output and a failing command's error message are masked too.
    const subject = t.healthSubject('staging');
    const res = await subject.exec('echo "$DEPLOY_TOKEN" >&2; exit 1', {
      timeoutMs: 5000,
      signal: ctx.signal,
    });
    expect(res).toMatchObject({ code: 1, stderr: '***\n' });
    const failing = w.target({ vars: { say: SECRET } });
    await t.releaseLock();
    const badCurrent = createRunnerTarget(
      failing.ctx,
      {
        ...(failing.t.config as RunnerTargetConfig),
        current: 'echo "cannot call the API with $DEPLOY_TOKEN" >&2; exit 7',
      },
      failing.store,
    );
    const err = await badCurrent.preflight('staging').catch((e: unknown) => e as DeployError);
    expect(err).toMatchObject({ errorClass: 'precondition' });
    expect((err as DeployError).message).toBe('`current` on shop exited 7: cannot call the API with ***');
    // A failed pre-flight leaves no lock behind.
    expect(await store.lockState('shop', 60_000)).toEqual({ held: false });

    const everything = [
      JSON.stringify([dep, snap, res, (err as Error).message]),
      fs.readFileSync(path.join(w.stateDir, 'shop', 'audit.log'), 'utf8'),
      fs.readFileSync(path.join(w.stateDir, 'shop', 'releases.log'), 'utf8'),
    ].join('\n');
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain(DB_PASSWORD);
    // The snapshot's output tail is in the audit log, masked.
    expect(fs.readFileSync(path.join(w.stateDir, 'shop', 'audit.log'), 'utf8')).toContain('(password ***)');
  });

  it('a later job (another run token, same release) reads the first job’s rollback point and rolls back what it deployed', async () => {
    const w = await world();
    const a = await deployOnce(w, COMMIT_A);
    await a.t.settle({ stage: 'staging', previous: null, unchanged: false });
    await a.t.releaseLock();
    // Job 1 of release B: staging deploy.
    const job1 = await deployOnce(w, COMMIT_B, { token: 'job1aaaa' });
    expect(job1.health?.ok).toBe(true);
    await job1.t.settle({ stage: 'staging', previous: 'task-def:1', unchanged: false });
    expect(await job1.t.releaseLock()).toBe(true);

    // Job 2: a new process, a new context and token, the same release; it knows nothing but the state store.
    const job2 = w.target({ commit: COMMIT_B, token: 'job2bbbb' });
    const pre = await job2.t.preflight('production');
    expect(pre).toMatchObject({ current: 'task-def:2', onNew: true, lock: 'acquired' });
    const kept = await job2.t.snapshot(undefined, { infra: false });
    expect(kept.point).toMatchObject({ previous: 'task-def:1', token: 'job1aaaa' });
    const point = await job2.t.readRollbackPoint();
    const rb = await job2.t.rollback({ stage: 'production', to: point?.previous ?? null });
    expect(rb.ok).toBe(true);
    expect((await served(w.port)).body).toMatchObject({
      version: 'task-def:1',
      release: COMMIT_A.slice(0, 12),
    });
    expect(fs.readFileSync(path.join(w.platformState, 'live'), 'utf8').trim()).toBe('task-def:1');
    expect(await job2.t.releaseLock()).toBe(true);
    // The lock actions of both jobs are audited with their tokens.
    const audit = fs
      .readFileSync(path.join(w.stateDir, 'shop', 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(audit.filter((l) => l.action === 'rollback').map((l) => l.token)).toEqual(['job2bbbb']);
  });

  it('a lock held by a live run is refused naming its holder; `current` is not even asked', async () => {
    const w = await world();
    const holder = w.target({ token: 'holder11' });
    await holder.t.preflight('production');
    const other = w.target({ token: 'other222' });
    const asked = path.join(w.dir, 'current-was-asked');
    const probing = createRunnerTarget(
      other.ctx,
      { ...(other.t.config as RunnerTargetConfig), current: `touch ${asked}; ${PLATFORM} current` },
      other.store,
    );
    const err = await probing.preflight('staging').catch((e: unknown) => e as DeployError);
    expect(fs.existsSync(asked)).toBe(false);
    expect(err).toMatchObject({ errorClass: 'lock-held' });
    expect((err as DeployError).message).toMatch(
      /^shop is locked by alice \(run https:\/\/github\.example\/run\/holder11, commit a{12}, phase production\) since \S+; last heartbeat \d+s ago \(lock in .+\)$/,
    );
    expect(await other.t.releaseLock()).toBe(false);
    expect(await other.t.releaseLockAsOperator({ operator: 'bob', force: false })).toMatchObject({
      outcome: 'refused-live',
    });
    expect(await other.t.releaseLockAsOperator({ operator: 'bob', force: true })).toMatchObject({
      outcome: 'released',
    });
    // The holder learns at its next heartbeat that the lock is gone.
    expect(await holder.t.heartbeat()).toBe(false);
  });

  it('rolling back a first deploy: refused without `down` (needs attention), `down` removes it when given', async () => {
    const w = await world();
    const first = await deployOnce(w, COMMIT_A);
    expect(first.dep.ok).toBe(true);
    const refused = await first.t.rollback({ stage: 'staging', to: null });
    expect(refused.ok).toBe(false);
    expect(refused.failed?.output).toMatch(
      /nothing to roll back to: shop ran no version before release a{12}/,
    );
    const st = await first.t.status();
    expect(st.needsAttention).toMatchObject({ event: 'rollback-failed', to: null, stage: 'staging' });
    expect(w.livePids()).toHaveLength(1);
    await first.t.releaseLock();

    const withDown = w.target({ down: `${PLATFORM} down` });
    await withDown.t.preflight('staging');
    const rb = await withDown.t.rollback({ stage: 'staging', to: null });
    expect(rb.ok).toBe(true);
    expect(w.livePids()).toEqual([]);
    expect(await withDown.t.readCurrent()).toEqual({ version: null, onNew: false });
    // A successful rollback clears the record.
    expect((await withDown.t.status()).needsAttention).toBeUndefined();
    await withDown.t.releaseLock();
  });

  it('`current` must print only the version: a banner on stdout is refused, not recorded as a version', async () => {
    const w = await world();
    const { ctx, t, store } = w.target();
    const chatty = createRunnerTarget(
      ctx,
      { ...(t.config as RunnerTargetConfig), current: 'echo "Describing stacks..."; echo task-def:9' },
      store,
    );
    await expect(chatty.preflight('staging')).rejects.toMatchObject({
      errorClass: 'precondition',
      message: expect.stringContaining(
        'it printed 2 lines on stdout; it must print only the version (or nothing when nothing is deployed) and log to stderr',
      ),
    });
    expect(await store.lockState('shop', 60_000)).toEqual({ held: false });
  });

  it('a missing cwd is a config error naming the key; the lock is given back', async () => {
    const w = await world();
    const { ctx, t, store } = w.target();
    const lost = createRunnerTarget(
      ctx,
      { ...(t.config as RunnerTargetConfig), cwd: path.join(w.dir, 'gone') },
      store,
    );
    await expect(lost.preflight('staging')).rejects.toMatchObject({
      errorClass: 'config',
      message: `targets.shop.cwd: directory ${path.join(w.dir, 'gone')} does not exist on this runner (needed to run \`current\`)`,
    });
    expect(await store.lockState('shop', 60_000)).toEqual({ held: false });
  });

  it('a relative state directory is refused with a clear config error', () => {
    expect(() => openStateStore({ kind: 'dir', path: 'relative/dir' }, 'shop')).toThrow(
      'targets.shop.state.path: expected an absolute directory on the runner, got "relative/dir"',
    );
  });
});

describe('runLocal', () => {
  const base = { cwd: os.tmpdir(), env: process.env };

  it('captures exit code, stdout, stderr and an interleaved tail, redacted before it is cut', async () => {
    const r = new Redactor();
    r.add(SECRET);
    const res = await runLocal(
      `printf 'x%.0s' $(seq 1 5000); echo; echo "key ${SECRET}"; echo err >&2; exit 4`,
      {
        ...base,
        timeoutMs: 10_000,
        tailChars: 100,
        redact: (t) => r.redact(t),
      },
    );
    expect(res.code).toBe(4);
    expect(res.stderr).toBe('err\n');
    expect(res.output.startsWith('…')).toBe(true);
    expect(res.output.length).toBeLessThanOrEqual(101);
    // stdout and stderr are two pipes: their lines arrive in either order.
    expect(res.output).toContain('key ***\n');
    expect(res.output).toContain('err\n');
    expect(res.stdout).not.toContain(SECRET);
  });

  it('a background process that keeps the output open does not hold the result; a daemon it started survives', async () => {
    const t0 = Date.now();
    const res = await runLocal('sleep 30 & echo $!', { ...base, timeoutMs: 10_000 });
    const pid = Number(res.stdout.trim());
    expect(res.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(res.output).toContain('still holds its output');
    expect(alive(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
  });

  it('a cancelled signal before the start runs nothing; ProcessGroups.killAll kills running groups', async () => {
    const ac = new AbortController();
    ac.abort();
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-exec-'));
    const marker = path.join(scratch, 'ran');
    const res = await runLocal(`touch ${marker}`, { ...base, timeoutMs: 5000, signal: ac.signal });
    expect(res).toMatchObject({ cancelled: true, code: null });
    expect(fs.existsSync(marker)).toBe(false);
    fs.rmSync(scratch, { recursive: true, force: true });

    const groups = new ProcessGroups();
    const running = runLocal('sleep 30 & sleep 30 & wait', {
      ...base,
      timeoutMs: 30_000,
      groups,
      graceMs: 300,
    });
    await waitFor(() =>
      groups.running.length === 1 && groupMembers(groups.running[0]).length === 3 ? true : undefined,
    );
    const pgid = groups.running[0];
    await groups.killAll();
    expect(groupMembers(pgid)).toEqual([]);
    expect(await running).toMatchObject({ cancelled: true, code: null });
    expect(groups.running).toEqual([]);
  });
});
