import * as fs from 'node:fs';
import { lockOwner } from '../lock-owner';
import type { RunnerTargetConfig } from '../../config/types';
import { DeployError, type ErrorClass } from '../../errors';
import type { StepReport } from '../../report/types';
import type { RunContext } from '../../run/context';
import { formatDuration } from '../../util/duration';
import type { ExecResult } from '../../util/shell';
import type { TemplateVars } from '../../util/template';
import type { StateStore } from '../state/store';
import type {
  DeployOptions,
  DeployOutcome,
  HealthSubject,
  LockOwner,
  OperatorLockRelease,
  PreflightOutcome,
  RollbackOptions,
  RollbackOutcome,
  RollbackPoint,
  SnapshotOutcome,
  Target,
  TargetStatus,
} from '../target';
import {
  commandEnv,
  outputGist,
  parseVersion,
  snapshotName,
  type CommandVars,
  type RunnerCommand,
  type RunnerConfig,
} from './commands';
import { ProcessGroups, runLocal, type LocalResult } from './exec';

/**
 * A platform driven by commands on the runner (CDK, `aws ecs`, kubectl, helm, terraform, a script): `current`
 * prints the live version, `up` deploys the release, `rollback` returns to $HD_PREVIOUS, an optional `snapshot`
 * runs before the target is changed (a database backup) and an optional `down` removes a first deploy. Versions
 * are whatever `current` prints; the lock, release log and rollback points live in a StateStore.
 */

/** A rollback point as this target writes it: plus the version `current` printed after this release's `up`. */
export type RunnerRollbackPoint = RollbackPoint & { deployed?: string | null };

const TERM_GRACE_MS = 5000;
const STATUS_LINES = 10;
const STATUS_TIMEOUT_MS = 120_000;

interface Ran {
  step: StepReport;
  result: LocalResult;
  timeoutMs: number;
}

interface LogLine {
  event?: string;
  result?: string;
  release?: string;
  commit?: string;
  version?: unknown;
}

function parseLines(text: string): LogLine[] {
  return text.split('\n').flatMap((l) => {
    if (!l.trim()) return [];
    try {
      const v = JSON.parse(l) as unknown;
      return v && typeof v === 'object' ? [v as LogLine] : [];
    } catch {
      return []; // a line cut by a crash or written by hand
    }
  });
}

function describeHolder(owner: LockOwner | null): string {
  if (!owner) return 'an unknown owner (no readable owner record)';
  return `${owner.actor ?? 'an unknown actor'} (run ${owner.runUrl ?? owner.runId ?? owner.token}, commit ${(owner.commit ?? '?').slice(0, 12)}, phase ${owner.phase}) since ${owner.startedAt}`;
}

class RunnerTarget implements Target {
  readonly kind = 'runner' as const;
  readonly name: string;
  private readonly groups = new ProcessGroups();
  /** What `current` printed in pre-flight. */
  private startVersion: string | null | undefined;
  /** What `current` printed after this run's `up`. */
  private deployedVersion: string | null | undefined;
  /** The version this run's deploy would return to (DeployOptions.previous). */
  private previous: string | null = null;
  /** Release and commit each version was deployed as, from the release log: for `expect.release` checks of an old version. */
  private readonly versions = new Map<string, { release: string; commit: string }>();

  constructor(
    private readonly ctx: RunContext,
    readonly config: RunnerConfig,
    private readonly store: StateStore,
  ) {
    this.name = config.name;
  }

  // ---- commands ----------------------------------------------------------------------------------------------

  private env(
    vars: Omit<CommandVars, 'project' | 'target' | 'release'> & { release?: CommandVars['release'] },
  ) {
    return commandEnv(this.ctx.env, {
      project: this.ctx.config.project,
      target: this.config,
      release: this.ctx.release,
      ...vars,
    });
  }

  private redact = (text: string) => this.ctx.redactor.redact(text);

  /**
   * Runs one of the target's commands. `signal` defaults to the run's cancellation; rollback passes its own,
   * because it must still run after the run was cancelled.
   */
  private async run(
    name: RunnerCommand,
    script: string,
    vars: Parameters<RunnerTarget['env']>[0],
    opts: { timeoutMs?: number; signal?: AbortSignal | null } = {},
  ): Promise<Ran> {
    const started = Date.now();
    const timeoutMs = opts.timeoutMs ?? this.config.timeoutMs;
    let result: LocalResult;
    try {
      result = await runLocal(script, {
        cwd: this.config.cwd,
        env: this.env(vars),
        timeoutMs,
        signal: opts.signal === null ? undefined : (opts.signal ?? this.ctx.signal),
        graceMs: TERM_GRACE_MS,
        redact: this.redact,
        groups: this.groups,
      });
    } catch (err) {
      const missing = !fs.existsSync(this.config.cwd);
      throw new DeployError(
        'config',
        missing
          ? `targets.${this.name}.cwd: directory ${this.config.cwd} does not exist on this runner (needed to run \`${name}\`)`
          : `targets.${this.name}: cannot run \`${name}\` in ${this.config.cwd}: ${this.redact((err as Error).message)}`,
        { host: this.name },
      );
    }
    const step: StepReport = {
      name,
      command: this.redact(script),
      exitCode: result.code,
      durationMs: Date.now() - started,
      output: result.output,
      ok: result.code === 0,
    };
    return { step, result, timeoutMs };
  }

  /** The error for a command that did not succeed, classed by what really happened. */
  private failure(ran: Ran, failedClass: ErrorClass = 'command-failed', phase?: string): DeployError {
    const { step, result } = ran;
    const gist = outputGist(result.output);
    const tail = gist ? `: ${gist}` : '';
    const where = { host: this.name, phase };
    if (result.timedOut)
      return new DeployError(
        'timeout',
        `\`${step.name}\` on ${this.name} did not finish within ${formatDuration(ran.timeoutMs)} and was killed${tail}`,
        where,
      );
    if (result.cancelled)
      return new DeployError('cancelled', `\`${step.name}\` on ${this.name} was cancelled${tail}`, where);
    return new DeployError(
      failedClass,
      `\`${step.name}\` on ${this.name} exited ${result.code ?? `on signal ${result.signal ?? '?'}`}${tail}`,
      where,
    );
  }

  /** Runs `current` and reads the version; a failure throws with `failedClass`. */
  private async readVersion(
    failedClass: ErrorClass,
    opts: { stage?: string; timeoutMs?: number; signal?: AbortSignal | null; phase?: string } = {},
  ): Promise<{ ran: Ran; version: string | null }> {
    const ran = await this.run('current', this.config.current, { stage: opts.stage }, opts);
    if (!ran.step.ok) throw this.failure(ran, failedClass, opts.phase);
    const v = parseVersion(ran.result.stdout);
    if ('error' in v) {
      ran.step.ok = false;
      throw new DeployError(
        failedClass,
        `\`current\` on ${this.name} printed something that is not a version (${v.error}): ${outputGist(ran.result.stdout, 1, 200)}`,
        { host: this.name, phase: opts.phase },
      );
    }
    return { ran, version: v.version };
  }

  // ---- state -------------------------------------------------------------------------------------------------

  private record(entry: Record<string, unknown>): Record<string, unknown> {
    const { ctx } = this;
    return ctx.redactor.redactDeep({
      time: new Date().toISOString(),
      host: this.name,
      target: this.name,
      kind: this.kind,
      release: ctx.release.id,
      commit: ctx.release.commit,
      actor: ctx.run.actor,
      runId: ctx.run.id,
      runUrl: ctx.run.url,
      token: ctx.runToken,
      ...entry,
    });
  }

  private audit(action: string, extra: Record<string, unknown> = {}): Promise<void> {
    return this.store.appendAudit(this.name, this.record({ action, ...extra }));
  }

  private async loadVersions(): Promise<LogLine[]> {
    const lines = parseLines(await this.store.readReleaseLog(this.name));
    for (const l of lines) {
      if (l.event === 'deploy' && l.result === 'deployed' && typeof l.version === 'string' && l.release)
        this.versions.set(l.version, { release: l.release, commit: l.commit ?? '' });
    }
    return lines;
  }

  /** This run's release is live: `current` prints what it printed right after this release's `up`. */
  private isOnNew(current: string | null, point: RunnerRollbackPoint | undefined): boolean {
    if (current === null) return false;
    if (point?.deployed !== undefined && point.deployed !== null && point.deployed === current) return true;
    return current === this.ctx.release.id || current === this.ctx.release.commit;
  }

  private lockOwner(phase: string): LockOwner {
    return lockOwner(this.ctx, this.name, phase);
  }

  // ---- Target ------------------------------------------------------------------------------------------------

  /**
   * Takes the lock first and then asks `current`: the version recorded as the rollback point must be read while
   * no other run can change it. A failed `current` gives the lock back (unless this run held it already), so a
   * failed pre-flight leaves nothing held, as the interface requires.
   */
  async preflight(phase: string): Promise<PreflightOutcome> {
    const lockCfg = this.ctx.config.lock;
    const got = await this.store.lock(this.name, this.lockOwner(phase), {
      staleAfterMs: lockCfg.staleAfterMs,
      takeoverStale: lockCfg.takeoverStale,
    });
    if (!got.ok) {
      const stale = got.ageSeconds >= lockCfg.staleAfterMs / 1000;
      const hint = stale
        ? `; its heartbeat is ${got.ageSeconds}s old (stale) but lock.takeover_stale is off: release it with \`homelab-deploy lock release\` after checking that run is gone`
        : `; last heartbeat ${got.ageSeconds}s ago`;
      throw new DeployError(
        'lock-held',
        `${this.name} is locked by ${describeHolder(got.holder)}${hint} (lock in ${this.store.describe})`,
        { host: this.name, phase },
      );
    }
    const lock: PreflightOutcome['lock'] = got.ours
      ? 'ours'
      : got.tookOverFrom !== undefined
        ? 'taken-over'
        : 'acquired';
    try {
      const { ran, version } = await this.readVersion('precondition', { phase });
      const point = (await this.store.readRollbackPoint(this.name, this.ctx.release.id)) as
        RunnerRollbackPoint | undefined;
      await this.loadVersions();
      this.startVersion = version;
      return {
        current: version,
        onNew: this.isOnNew(version, point),
        prepared: false,
        lock,
        steps: { ok: true, steps: [ran.step] },
        detail: { stateStore: this.store.describe },
      };
    } catch (err) {
      if (lock !== 'ours') await this.store.unlock(this.name, this.ctx.runToken).catch(() => undefined);
      throw err;
    }
  }

  heartbeat(): Promise<boolean> {
    return this.store.heartbeat(this.name, this.ctx.runToken);
  }

  releaseLock(): Promise<boolean> {
    return this.store.unlock(this.name, this.ctx.runToken);
  }

  /**
   * Records where a rollback of this release returns to. With `infra` and a `snapshot` command, runs it first
   * (e.g. a database backup before production); the last line it prints is kept as the snapshot's name, given to
   * `rollback` as $HD_SNAPSHOT, and its output tail goes to the report and the audit log.
   */
  async snapshot(previous: string | null | undefined, opts: { infra: boolean }): Promise<SnapshotOutcome> {
    if (previous === undefined) {
      const point = await this.readRollbackPoint();
      return {
        point,
        warnings: point
          ? []
          : [
              `${this.name} already runs release ${this.ctx.release.id} but no rollback point for it is recorded in ${this.store.describe}; it cannot be rolled back by this run`,
            ],
      };
    }
    const steps: StepReport[] = [];
    let infraSnapshot: string | undefined;
    if (opts.infra && this.config.snapshot) {
      // No stage: the snapshot phase runs once before all stages (target vars say which environment it is).
      const ran = await this.run('snapshot', this.config.snapshot, { previous });
      steps.push(ran.step);
      await this.audit('snapshot', {
        kind: 'infra',
        ok: ran.step.ok,
        exitCode: ran.step.exitCode,
        output: ran.result.output.slice(-1000),
      });
      if (!ran.step.ok) throw this.failure(ran, 'command-failed', 'snapshot');
      infraSnapshot = snapshotName(ran.result.stdout);
    }
    const point: RunnerRollbackPoint = {
      release: this.ctx.release.id,
      previous,
      infraSnapshot,
      recordedAt: new Date().toISOString(),
      runId: this.ctx.run.id,
      token: this.ctx.runToken,
    };
    await this.store.writeRollbackPoint(this.name, point);
    await this.audit('snapshot', { kind: 'release', previous, infraSnapshot });
    return { point, steps: { ok: true, steps } };
  }

  readRollbackPoint(): Promise<RollbackPoint | undefined> {
    return this.store.readRollbackPoint(this.name, this.ctx.release.id);
  }

  /**
   * Runs `up`, then `current` to learn the new version, which is recorded in the rollback point (so a later job
   * can tell this release is live). A non-zero exit resolves with the failed step and `switched` (the platform
   * may be half changed); a timeout or cancellation rejects with that class, like a remote command does.
   */
  async deploy(opts: DeployOptions): Promise<DeployOutcome> {
    this.previous = opts.previous;
    await this.appendLog({ event: 'deploy', stage: opts.stage, previous: opts.previous, result: 'started' });
    await this.audit('deploy', { stage: opts.stage, previous: opts.previous });
    const up = await this.run('up', this.config.up, { stage: opts.stage, previous: opts.previous });
    if (up.result.timedOut || up.result.cancelled) throw this.failure(up, 'command-failed', opts.stage);
    if (!up.step.ok) return { ok: false, switched: true, steps: [up.step], failed: up.step };
    let cur: { ran: Ran; version: string | null };
    try {
      cur = await this.readVersion('command-failed', { stage: opts.stage, phase: opts.stage });
    } catch (err) {
      const e = err as DeployError;
      if (e.errorClass === 'timeout' || e.errorClass === 'cancelled') throw e;
      // `up` worked but the new version cannot be read: later jobs could not tell this release is live.
      const step: StepReport = {
        name: 'current',
        command: this.redact(this.config.current),
        durationMs: 0,
        ok: false,
        output: e.message,
      };
      return { ok: false, switched: true, steps: [up.step, step], failed: step };
    }
    this.deployedVersion = cur.version;
    const point = ((await this.readRollbackPoint()) as RunnerRollbackPoint | undefined) ?? {
      release: this.ctx.release.id,
      previous: opts.previous,
      recordedAt: new Date().toISOString(),
      runId: this.ctx.run.id,
      token: this.ctx.runToken,
    };
    await this.store.writeRollbackPoint(this.name, {
      ...point,
      deployed: cur.version,
    } as RunnerRollbackPoint);
    await this.store.setNeedsAttention(this.name, null);
    return { ok: true, switched: true, version: cur.version, steps: [up.step, cur.ran.step] };
  }

  healthSubject(stage: string, version?: string | null): HealthSubject {
    const forRun = version === undefined;
    const v = forRun ? (this.deployedVersion ?? this.startVersion ?? null) : version;
    const known = v !== null ? this.versions.get(v) : undefined;
    const release = forRun
      ? this.ctx.release
      : { id: known?.release ?? v ?? '', commit: known?.commit ?? '', ref: '' };
    const previous = forRun ? this.previous : null;
    const vars: TemplateVars = {
      'target.name': this.name,
      'target.kind': this.kind,
      // The host.* names too, so one stage's checks can be written once for SSH hosts and runner targets.
      'host.name': this.name,
      'release.id': release.id,
      'release.commit': release.commit,
      project: this.ctx.config.project,
      'stage.name': stage,
      previous: previous ?? '',
      version: v ?? '',
    };
    for (const [k, val] of Object.entries(this.config.vars)) {
      vars[`target.vars.${k}`] = val;
      vars[`host.vars.${k}`] = val;
    }
    // Only the HD_* values: the run's own environment is added where a command runs, never copied into reports.
    const env = Object.fromEntries(
      Object.entries(this.env({ stage, previous, version: v, release })).filter(
        (e): e is [string, string] => e[0].startsWith('HD_') && typeof e[1] === 'string',
      ),
    );
    return {
      name: this.name,
      vars,
      env,
      release: release.id,
      exec: (command, o) => this.execCheck(command, o, { stage, previous, version: v, release }),
    };
  }

  /** A `command` health check, run on the runner like the target's own commands; rejects on timeout/cancel. */
  private async execCheck(
    command: string,
    o: { timeoutMs: number; signal: AbortSignal },
    vars: { stage: string; previous: string | null; version: string | null; release: CommandVars['release'] },
  ): Promise<ExecResult> {
    const ran = await this.run('health', command, vars, { timeoutMs: o.timeoutMs, signal: o.signal });
    const r = ran.result;
    if (r.timedOut || r.cancelled) throw this.failure(ran, 'command-failed', vars.stage);
    return { code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr, durationMs: r.durationMs };
  }

  /**
   * Runs `rollback` with $HD_PREVIOUS = `opts.to`, then `current` to see what is live. With `to` null (nothing ran
   * before this release) it runs `down` if the target has one; without `down` there is nothing to return to,
   * and that is a failed rollback a human must look at, not a silent success. The rollback does not listen to
   * the run's cancellation (it is what a cancelled run still has to do); with `handOverWaitMs` it is bounded by
   * it, because a runner cannot hand a command over to anyone: it dies with the job.
   */
  async rollback(opts: RollbackOptions): Promise<RollbackOutcome> {
    const t0 = Date.now();
    const budget = opts.handOverWaitMs ?? this.config.timeoutMs;
    const vars = { stage: opts.stage, previous: opts.to, snapshot: opts.infraSnapshot };
    let ran: Ran;
    if (opts.to !== null) {
      ran = await this.run('rollback', this.config.rollback, vars, { timeoutMs: budget, signal: null });
    } else if (this.config.down) {
      ran = await this.run('down', this.config.down, vars, { timeoutMs: budget, signal: null });
    } else {
      const step: StepReport = {
        name: 'rollback',
        durationMs: 0,
        ok: false,
        output: `nothing to roll back to: ${this.name} ran no version before release ${this.ctx.release.id} (\`current\` printed nothing), and the target has no \`down\` command to remove it`,
      };
      await this.rollbackFailed(opts, step);
      return { ok: false, steps: [step], failed: step };
    }
    if (!ran.step.ok) {
      await this.rollbackFailed(opts, ran.step, this.failure(ran).message);
      return { ok: false, steps: [ran.step], failed: ran.step };
    }
    const steps = [ran.step];
    const actions: string[] = [];
    let now: string | null | undefined;
    try {
      const left = Math.max(1000, budget - (Date.now() - t0));
      const cur = await this.readVersion('command-failed', {
        stage: opts.stage,
        timeoutMs: left,
        signal: null,
      });
      steps.push(cur.ran.step);
      now = cur.version;
      actions.push(`${this.name}: \`current\` prints ${JSON.stringify(now)} after the rollback`);
      if (now !== opts.to)
        actions.push(
          `${this.name}: expected ${JSON.stringify(opts.to)}; platforms that number a rollback as a new revision (helm) print a new one`,
        );
    } catch (err) {
      actions.push(
        `${this.name}: the version after the rollback could not be read: ${(err as Error).message}`,
      );
    }
    const point = (await this.readRollbackPoint().catch(() => undefined)) as RunnerRollbackPoint | undefined;
    if (point?.deployed !== undefined) {
      const rest: RunnerRollbackPoint = { ...point };
      delete rest.deployed;
      await this.store.writeRollbackPoint(this.name, rest);
    }
    this.deployedVersion = undefined;
    await this.store.setNeedsAttention(this.name, null);
    await this.appendLog({
      event: 'rollback',
      stage: opts.stage,
      to: opts.to,
      version: now,
      result: 'rolled_back',
      durationMs: Date.now() - t0,
    });
    await this.audit('rollback', { stage: opts.stage, to: opts.to, infraSnapshot: opts.infraSnapshot });
    return { ok: true, steps, actions: this.ctx.redactor.redactDeep(actions) };
  }

  private async rollbackFailed(opts: RollbackOptions, step: StepReport, message?: string): Promise<void> {
    const error = message ?? step.output ?? `\`${step.name}\` failed`;
    const entry = { stage: opts.stage, to: opts.to, error };
    await this.store.setNeedsAttention(
      this.name,
      this.record({ event: 'rollback-failed', ...entry, output: (step.output ?? '').slice(-2000) }),
    );
    await this.appendLog({ event: 'rollback', ...entry, result: 'rollback_failed' });
    await this.audit('rollback-failed', entry);
  }

  async settle(opts: {
    stage: string;
    previous: string | null;
    unchanged: boolean;
    durationMs?: number;
  }): Promise<void> {
    const version = opts.unchanged ? this.startVersion : (this.deployedVersion ?? this.startVersion);
    await this.appendLog({
      event: 'deploy',
      stage: opts.stage,
      previous: opts.previous,
      version: version ?? null,
      result: opts.unchanged ? 'unchanged' : 'deployed',
      durationMs: opts.durationMs,
    });
  }

  async markNeedsAttention(record: Record<string, unknown>): Promise<void> {
    await this.store.setNeedsAttention(this.name, this.record(record));
  }

  appendLog(entry: Record<string, unknown>): Promise<void> {
    return this.store.appendReleaseLog(this.name, this.record(entry));
  }

  /** Not bound to the run's cancellation: the final report wants what is live also after a cancel. */
  async readCurrent(opts: { timeoutMs?: number } = {}): Promise<{ version: string | null; onNew: boolean }> {
    const { version } = await this.readVersion('command-failed', {
      timeoutMs: opts.timeoutMs ?? this.config.timeoutMs,
      signal: null,
    });
    const point = (await this.readRollbackPoint()) as RunnerRollbackPoint | undefined;
    return { version, onNew: this.isOnNew(version, point) };
  }

  kill(): Promise<void> {
    return this.groups.killAll();
  }

  async close(): Promise<void> {
    // Nothing is held open between commands.
  }

  async status(): Promise<TargetStatus> {
    const staleAfterMs = this.ctx.config.lock.staleAfterMs;
    const [lock, lines, points, needsAttention] = await Promise.all([
      this.store.lockState(this.name, staleAfterMs),
      this.loadVersions(),
      this.store.listRollbackPoints(this.name, 10) as Promise<RunnerRollbackPoint[]>,
      this.store.getNeedsAttention(this.name),
    ]);
    const base: TargetStatus = {
      host: this.name,
      kind: this.kind,
      reachable: true,
      lock,
      recent: lines.slice(-STATUS_LINES) as Record<string, unknown>[],
      rollbackPoints: points,
      releases: deployedVersions(lines),
      needsAttention,
      extra: { stateStore: this.store.describe },
    };
    let current: string | null;
    try {
      // An operator waits for this: a hung platform CLI is reported as unreachable after two minutes at most.
      const timeoutMs = Math.min(this.config.timeoutMs, STATUS_TIMEOUT_MS);
      current = (await this.readVersion('command-failed', { signal: null, timeoutMs })).version;
    } catch (err) {
      return { ...base, reachable: false, error: this.redact((err as Error).message) };
    }
    const point =
      points.find((p) => p.deployed !== undefined && p.deployed === current) ??
      points.find((p) => p.release === this.versions.get(current ?? '')?.release);
    const line = lines
      .filter((l) => l.event === 'deploy' && l.result === 'deployed' && l.version === current)
      .pop() as (LogLine & { previous?: string | null }) | undefined;
    return {
      ...base,
      empty: current === null && lines.length === 0,
      current,
      previous: point ? point.previous : (line?.previous ?? null),
    };
  }

  releaseLockAsOperator(opts: { operator: string; force: boolean }): Promise<OperatorLockRelease> {
    return this.store.releaseAsOperator(this.name, {
      ...opts,
      staleAfterMs: this.ctx.config.lock.staleAfterMs,
    });
  }

  readReleaseLog(): Promise<string> {
    return this.store.readReleaseLog(this.name);
  }
}

/** Versions a rollback can return to, newest first, each once. */
function deployedVersions(lines: LogLine[]): string[] {
  const seen = new Set<string>();
  for (const l of [...lines].reverse()) {
    if (l.event === 'deploy' && l.result === 'deployed' && typeof l.version === 'string') seen.add(l.version);
  }
  return [...seen];
}

/** The runner command target (`kind: runner`); `store` is where its lock, log and rollback points live. */
export function createRunnerTarget(ctx: RunContext, config: RunnerTargetConfig, store: StateStore): Target {
  return new RunnerTarget(ctx, config, store);
}
