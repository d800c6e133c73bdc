import type { StageConfig } from '../../config/types';
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
import { sleep } from '../../util/duration';
import { endPhase, startPhase } from '../phase-report';
import type { Plan, PlannedPhase } from '../../plan/plan';
import { backoffDelay } from '../retry';
import { rollbackHosts } from '../rollback';
import { record, Stop, targetRun, type RunState, type TargetRun } from '../run-state';
import { recordTestsPassed } from '../tests-record';
import { runTests } from '../tests-runner';
import { HealthFailed, requireHealthy } from '../health-gate';

export type StageOutcome = 'deployed' | 'continue-degraded';

/**
 * Deploys one stage (with its retry policy per host), runs its tests, and applies its failure rule. Returns
 * normally when the stage is live; throws Stop when the run must end; returns 'continue-degraded' when a
 * rollback-stage failure left earlier stages live (the run deploys nothing further but still verifies).
 */
export async function runStage(state: RunState, p: PlannedPhase, stage: StageConfig): Promise<StageOutcome> {
  const t0 = Date.now();
  const r = startPhase(state, p);
  r.hosts = await mapLimit(stage.targets, stage.parallel, (name) =>
    deployTarget(state, targetRun(state, name), stage),
  );
  for (const hr of r.hosts) recordDeploy(state, hr);

  let failure = r.hosts.find((h) => !h.ok)?.error;
  if (!failure && stage.tests) failure = await gate(state, r, stage);
  if (failure) {
    const info = { ...failure, phase: stage.name };
    endPhase(state, r, t0, info);
    const scope = stage.onFailure === 'rollback-all' ? rollbackAllScope(state, stage) : stage.targets;
    await rollbackHosts(state, scope, stage.name, r);
    r.status = state.noRollback ? 'failed' : 'rolled_back';
    if (stage.onFailure === 'rollback-all') throw new Stop(statusAfterRollbackAll(state, stage), info);
    // rollback-stage: earlier stages stay live; deploy nothing further, but verify what is live.
    if (![...state.runs.values()].some((h) => h.onNew)) throw new Stop('failed', info);
    return 'continue-degraded';
  }
  await mapLimit(stage.targets, stage.parallel, async (name) => {
    const h = targetRun(state, name);
    await settle(h, stage, r);
    // Deployed and healthy: the final states need not ask it again unless a later failure rolls it back.
    h.settled = true;
  });
  endPhase(state, r, t0);
  return 'deployed';
}

/** An audit line for a target this run switched to the new release. */
export function recordDeploy(state: RunState, hr: HostPhaseReport): void {
  if (hr.detail?.unchanged || !hr.detail?.switched) return;
  const n = hr.attempts.length;
  record(state, 'deploy', hr.host, `${state.ctx.release.id} (${n} attempt${n === 1 ? '' : 's'})`);
}

/** The stage's tests; any error running them (the host dropped, say) is a failed gate, never an escape. */
export async function gate(
  state: RunState,
  r: PhaseReport,
  stage: StageConfig,
): Promise<ErrorInfo | undefined> {
  const { ctx } = state;
  const tests = stage.tests;
  if (!tests) return undefined;
  let report: TestsReport;
  const skipped = state.skippedTests?.get(stage.name);
  try {
    report = skipped ?? (await runTests(ctx, state.targets, tests, stage.name, stage.targets));
    if (report.ok && !skipped) await recordTestsPassed(state, stage, report);
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

/** A live stage's bookkeeping on each target: the release log line, pruning, old infrastructure snapshots. */
export async function settle(h: TargetRun, stage: StageConfig, r: PhaseReport): Promise<void> {
  const hr = r.hosts.find((x) => x.host === h.target.name);
  await h.target
    .settle({
      stage: stage.name,
      previous: h.before,
      unchanged: hr?.detail?.unchanged === true,
      durationMs: hr?.durationMs,
      infraSnapshot: h.infraSnapshot,
    })
    .catch(() => undefined);
}

/**
 * What rollback-all returns: the hosts of this stage and of the stages before it that run the new release, and
 * any host this run changed. Hosts of later stages that an earlier run already moved are left alone: this
 * failure says nothing about them (a staging failure on a re-run must not touch production).
 */
export function rollbackAllScope(state: RunState, stage: StageConfig): string[] {
  const order = state.ctx.config.stages.map((s) => s.name);
  const upTo = new Set(order.slice(0, order.indexOf(stage.name) + 1));
  return [...state.runs.values()]
    .filter((h) => h.touched || (h.onNew && h.stage !== undefined && upTo.has(h.stage)))
    .map((h) => h.target.name);
}

/**
 * The failure rules, derived from what actually happened: if a host of another stage that this run deployed
 * still runs the new release the outcome is a partial success; if hosts of stages that had succeeded were rolled
 * back it is `rolled_back`; otherwise `failed`.
 */
export function statusAfterRollbackAll(state: RunState, failedStage: StageConfig): DeployStatus {
  const runs = [...state.runs.values()];
  const deployedHere = (h: TargetRun) => h.onNew && !h.startedOnNew && !h.rollback?.ok;
  if (runs.some((h) => h.stage !== failedStage.name && deployedHere(h))) return 'partial_success';
  return runs.some((h) => h.rollback?.ok && h.stage !== failedStage.name) ? 'rolled_back' : 'failed';
}

/** Deploys to one target with the stage's retry policy; health failures count as deploy failures of that attempt. */
export async function deployTarget(
  state: RunState,
  h: TargetRun,
  stage: StageConfig,
): Promise<HostPhaseReport> {
  const { ctx } = state;
  const t0 = Date.now();
  const attempts: AttemptReport[] = [];
  const report: HostPhaseReport = {
    host: h.target.name,
    ok: false,
    durationMs: 0,
    attempts,
    steps: [],
    health: [],
  };
  // Already current (a re-run, or a later job): deploying again would restart the stack for nothing, unless its
  // env file changed, which only a new `up` applies.
  if (h.startedOnNew && !ctx.force && !h.envWritten) {
    const health = await runHealthChecks(ctx, h.target.healthSubject(stage.name), stage.health).catch(
      () => undefined,
    );
    if (health?.every((x) => x.ok)) {
      report.ok = true;
      report.health = health;
      report.detail = { unchanged: true };
      attempts.push({ attempt: 1, ok: true, durationMs: Date.now() - t0 });
      ctx.emit({
        type: 'log',
        level: 'info',
        message: `${h.target.name}: release ${ctx.release.id} is already current and healthy; not redeployed (use --force to redeploy)`,
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
      const res = await h.target.deploy({
        stage: stage.name,
        previous: h.before,
        prepared: h.prepared,
        checkBeforeActivate: (subject) => requireHealthy(ctx, subject, stage.health, stage.name),
      });
      report.steps = res.steps;
      for (const s of res.steps)
        ctx.emit({ type: 'host-step', phase: stage.name, host: h.target.name, step: s });
      if (res.health) report.health = res.health;
      if (res.switched) {
        report.detail = { ...report.detail, switched: true };
        h.touched = true;
        h.onNew = true;
        h.prepared = true;
        if (res.version) h.newVersion = res.version;
      }
      if (!res.ok) {
        const f = res.failed;
        throw new DeployError(
          'command-failed',
          `${f?.name} failed on ${h.target.name} (exit ${f?.exitCode ?? 'none'}): ${(f?.output ?? '').trim().split('\n').slice(-3).join(' | ')}`,
          { host: h.target.name },
        );
      }
      report.health = await requireHealthy(ctx, h.target.healthSubject(stage.name), stage.health, stage.name);
    } catch (e) {
      if (e instanceof HealthFailed) report.health = e.health;
      err = toDeployError(e, 'command-failed').withContext({ host: h.target.name, phase: stage.name });
      // A dropped connection or a cancelled command leaves the host's state unknown: treat it as touched, so the
      // rollback looks (it leaves a host whose `current` was never switched as it is).
      if (['unreachable', 'timeout', 'cancelled'].includes(err.errorClass)) h.touched = true;
    }
    const info = err ? ctx.errorInfo(err, { host: h.target.name, phase: stage.name }) : undefined;
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
      host: h.target.name,
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
      await h.target
        .appendLog({
          event: 'deploy',
          stage: stage.name,
          previous: h.before,
          result: err.errorClass === 'cancelled' ? 'cancelled' : 'failed',
          attempt,
          error: info?.class,
        })
        .catch(() => undefined);
    }
    if (attempt >= stage.retry.attempts || !isRetryable(err, stage.retry.on) || ctx.signal.aborted) break;
    delayBefore = backoffDelay(stage.retry, attempt + 1, state.random);
    ctx.emit({
      type: 'retry',
      phase: stage.name,
      host: h.target.name,
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
