import type { StageConfig } from '../../config/types';
import { appendReleaseLog, deployRelease, pruneReleases } from '../../deploy/host-ops';
import { DeployError, isRetryable, toDeployError } from '../../errors';
import { runHealthChecks } from '../../health/run';
import { mapLimit } from '../../util/concurrency';
import type {
  AttemptReport,
  DeployStatus,
  ErrorInfo,
  HostPhaseReport,
  PhaseReport,
  TestsReport,
} from '../../report/types';
import { auditSnapshotActions } from '../../snapshot/audit';
import { SnapshotActionError, snapshotProvider, type SnapshotAction } from '../../snapshot/provider';
import { sleep } from '../../util/duration';
import { endPhase, startPhase } from '../phase-report';
import type { Plan, PlannedPhase } from '../plan';
import { backoffDelay } from '../retry';
import { rollbackHosts } from '../rollback';
import { hostRun, record, Stop, type HostRun, type RunState } from '../run-state';
import { runTests } from '../tests-runner';
import { HealthFailed, requireHealthy } from '../health-gate';

export type StageOutcome = 'deployed' | 'continue-degraded';

/**
 * Deploys one stage (with its retry policy per host), runs its tests, and applies its failure rule. Returns
 * normally when the stage is live; throws Stop when the run must end; returns 'continue-degraded' when a
 * rollback-stage failure left earlier stages live (the run deploys nothing further but still verifies).
 */
export async function runStage(state: RunState, p: PlannedPhase, stage: StageConfig): Promise<StageOutcome> {
  const { ctx } = state;
  const t0 = Date.now();
  const r = startPhase(state, p);
  r.hosts = await mapLimit(stage.hosts, stage.parallel, (name) =>
    deployHost(state, hostRun(state, name), stage),
  );
  for (const hr of r.hosts)
    if (!hr.detail?.unchanged && hr.steps.some((st) => st.name === 'switch' && st.ok))
      record(
        state,
        'deploy',
        hr.host,
        `${ctx.release.id} (${hr.attempts.length} attempt${hr.attempts.length === 1 ? '' : 's'})`,
      );

  let failure = r.hosts.find((h) => !h.ok)?.error;
  if (!failure && stage.tests) failure = await gate(state, r, stage);
  if (failure) {
    const info = { ...failure, phase: stage.name };
    endPhase(state, r, t0, info);
    const scope = stage.onFailure === 'rollback-all' ? rollbackAllScope(state, stage) : stage.hosts;
    await rollbackHosts(state, scope, stage.name, r);
    r.status = 'rolled_back';
    if (stage.onFailure === 'rollback-all') throw new Stop(statusAfterRollbackAll(state, stage), info);
    // rollback-stage: earlier stages stay live; deploy nothing further, but verify what is live.
    if (![...state.hosts.values()].some((h) => h.onNew)) throw new Stop('failed', info);
    return 'continue-degraded';
  }
  await mapLimit(stage.hosts, stage.parallel, (name) => settle(state, hostRun(state, name), stage, r));
  endPhase(state, r, t0);
  return 'deployed';
}

/** The stage's tests; any error running them (the host dropped, say) is a failed gate, never an escape. */
async function gate(state: RunState, r: PhaseReport, stage: StageConfig): Promise<ErrorInfo | undefined> {
  const { ctx } = state;
  const tests = stage.tests;
  if (!tests) return undefined;
  let report: TestsReport;
  try {
    report = await runTests(ctx, tests, stage.name, stage.hosts);
  } catch (err) {
    const info = ctx.errorInfo(err, {
      phase: stage.name,
      host: tests.on === 'runner' ? undefined : tests.on,
    });
    report = { on: tests.on, ok: false, exitCode: null, durationMs: 0, outputTail: info.message };
  }
  r.tests = report;
  ctx.emit({
    type: 'tests',
    phase: stage.name,
    on: report.on,
    ok: report.ok,
    exitCode: report.exitCode,
    durationMs: report.durationMs,
  });
  if (report.ok) return undefined;
  const last = report.outputTail.trim().split('\n').slice(-3).join(' | ');
  return {
    class: 'tests-failed',
    message: `tests on ${report.on} failed (exit ${report.exitCode ?? 'none'}): ${last}`,
    phase: stage.name,
    host: report.on === 'runner' ? undefined : report.on,
  };
}

/** A live stage's bookkeeping on each host: the release log line, pruning, old infrastructure snapshots. */
async function settle(state: RunState, h: HostRun, stage: StageConfig, r: PhaseReport): Promise<void> {
  const { ctx } = state;
  const hr = r.hosts.find((x) => x.host === h.host.name);
  await appendReleaseLog(ctx, h.host, {
    event: 'deploy',
    stage: stage.name,
    previous: h.before,
    result: hr?.detail?.unchanged ? 'unchanged' : 'deployed',
    durationMs: hr?.durationMs,
  }).catch(() => undefined);
  await pruneReleases(ctx, h.host, [ctx.release.id, h.before ?? '']).catch(() => undefined);
  if (h.host.snapshot && h.infraSnapshot) {
    let pruned: SnapshotAction[] = [];
    try {
      pruned = await snapshotProvider(ctx, h.host, h.host.snapshot).prune([h.infraSnapshot]);
    } catch (err) {
      if (err instanceof SnapshotActionError) pruned = err.actions;
      ctx.emit({
        type: 'log',
        level: 'warn',
        message: `${h.host.name}: pruning old snapshots failed: ${ctx.errorInfo(err).message}`,
      });
    }
    for (const a of pruned) record(state, 'snapshot', h.host.name, a.detail);
    await auditSnapshotActions(ctx, h.host, pruned).catch(() => undefined);
  }
}

/**
 * What rollback-all returns: the hosts of this stage and of the stages before it that run the new release, and
 * any host this run changed. Hosts of later stages that an earlier run already moved are left alone: this
 * failure says nothing about them (a staging failure on a re-run must not touch production).
 */
function rollbackAllScope(state: RunState, stage: StageConfig): string[] {
  const order = state.ctx.config.stages.map((s) => s.name);
  const upTo = new Set(order.slice(0, order.indexOf(stage.name) + 1));
  return [...state.hosts.values()]
    .filter((h) => h.touched || (h.onNew && h.stage !== undefined && upTo.has(h.stage)))
    .map((h) => h.host.name);
}

/**
 * The seed's rules, derived from what actually happened: if a host of another stage that this run deployed
 * still runs the new release the outcome is a partial success; if hosts of stages that had succeeded were rolled
 * back it is `rolled_back`; otherwise `failed`.
 */
function statusAfterRollbackAll(state: RunState, failedStage: StageConfig): DeployStatus {
  const runs = [...state.hosts.values()];
  const release = state.ctx.release.id;
  const deployedHere = (h: HostRun) => h.onNew && h.startCurrent !== release && !h.rollback;
  if (runs.some((h) => h.stage !== failedStage.name && deployedHere(h))) return 'partial_success';
  return runs.some((h) => h.rollback && h.stage !== failedStage.name) ? 'rolled_back' : 'failed';
}

/** Deploys to one host with the stage's retry policy; health failures count as deploy failures of that attempt. */
async function deployHost(state: RunState, h: HostRun, stage: StageConfig): Promise<HostPhaseReport> {
  const { ctx } = state;
  const t0 = Date.now();
  const attempts: AttemptReport[] = [];
  const report: HostPhaseReport = {
    host: h.host.name,
    ok: false,
    durationMs: 0,
    attempts,
    steps: [],
    health: [],
  };
  // Already current (a re-run, or a later job): deploying again would restart the stack for nothing, unless its
  // env file changed, which only a new `up` applies.
  if (h.startCurrent === ctx.release.id && !ctx.force && !h.envWritten) {
    const health = await runHealthChecks(ctx, h.host, stage.health, stage.name).catch(() => undefined);
    if (health?.every((x) => x.ok)) {
      report.ok = true;
      report.health = health;
      report.detail = { unchanged: true };
      attempts.push({ attempt: 1, ok: true, durationMs: Date.now() - t0 });
      ctx.emit({
        type: 'log',
        level: 'info',
        message: `${h.host.name}: release ${ctx.release.id} is already current and healthy; not redeployed (use --force to redeploy)`,
      });
      report.durationMs = Date.now() - t0;
      return report;
    }
  }
  let delayBefore: number | undefined;
  for (let attempt = 1; attempt <= stage.retry.attempts; attempt++) {
    const a0 = Date.now();
    let err: DeployError | undefined;
    try {
      const res = await deployRelease(ctx, h.host, stage.name, h.before, !h.releaseComplete);
      report.steps = res.steps;
      for (const s of res.steps)
        ctx.emit({ type: 'host-step', phase: stage.name, host: h.host.name, step: s });
      if (res.steps.some((s) => s.name === 'switch' && s.ok)) {
        h.touched = true;
        h.onNew = true;
        h.releaseComplete = true;
      }
      if (!res.ok) {
        const f = res.failed;
        throw new DeployError(
          'command-failed',
          `${f?.name} failed on ${h.host.name} (exit ${f?.exitCode ?? 'none'}): ${(f?.output ?? '').trim().split('\n').slice(-3).join(' | ')}`,
          { host: h.host.name },
        );
      }
      report.health = await requireHealthy(ctx, h.host, stage.health, stage.name, stage.name);
    } catch (e) {
      if (e instanceof HealthFailed) report.health = e.health;
      err = toDeployError(e, 'command-failed').withContext({ host: h.host.name, phase: stage.name });
      // A dropped connection or a cancelled command leaves the host's state unknown: treat it as touched, so the
      // rollback looks (it leaves a host whose `current` was never switched as it is).
      if (['unreachable', 'timeout', 'cancelled'].includes(err.errorClass)) h.touched = true;
    }
    const info = err ? ctx.errorInfo(err, { host: h.host.name, phase: stage.name }) : undefined;
    attempts.push({
      attempt,
      ok: !err,
      durationMs: Date.now() - a0,
      error: info,
      delayBeforeMs: delayBefore,
    });
    ctx.emit({
      type: 'host-end',
      phase: stage.name,
      host: h.host.name,
      ok: !err,
      durationMs: Date.now() - a0,
      error: info,
      attempt,
    });
    if (!err) {
      report.ok = true;
      break;
    }
    report.error = info;
    if (h.touched) {
      await appendReleaseLog(ctx, h.host, {
        event: 'deploy',
        stage: stage.name,
        previous: h.before,
        result: err.errorClass === 'cancelled' ? 'cancelled' : 'failed',
        attempt,
        error: info?.class,
      }).catch(() => undefined);
    }
    if (attempt >= stage.retry.attempts || !isRetryable(err, stage.retry.on) || ctx.signal.aborted) break;
    delayBefore = backoffDelay(stage.retry, attempt + 1, state.random);
    ctx.emit({
      type: 'retry',
      phase: stage.name,
      host: h.host.name,
      attempt: attempt + 1,
      delayMs: delayBefore,
      error: info as ErrorInfo,
    });
    await sleep(delayBefore, ctx.signal);
  }
  if (report.ok) report.error = undefined;
  report.durationMs = Date.now() - t0;
  return report;
}

/** After a rollback-stage failure the later stages are not deployed; the report lists them as skipped. */
export function skipRemainingStages(plan: Plan, current: PlannedPhase, phases: PhaseReport[]): void {
  const idx = plan.phases.indexOf(current);
  for (const p of plan.phases.slice(idx + 1)) {
    if (p.kind !== 'stage') continue;
    phases.push({
      name: p.name,
      kind: 'stage',
      status: 'skipped',
      startedAt: new Date().toISOString(),
      durationMs: 0,
      hosts: [],
    });
  }
}
