import type { StageConfig } from '../../config/types';
import { budgetExceeded } from '../../plan/waves';
import type { ErrorInfo, HealthReport, HostPhaseReport } from '../../report/types';
import { mapLimit } from '../../util/concurrency';
import { HealthFailed, requireHealthy } from '../health-gate';
import { endPhase, startPhase } from '../phase-report';
import type { PlannedPhase } from '../../plan/plan';
import { rollbackHosts } from '../rollback';
import { Stop, type RunState, type TargetRun } from '../run-state';

/**
 * Runs every stage's checks and the verify checks against every target that runs the new release. A failure, or
 * any error while checking (a target that dropped), rolls back everything unless the config says not to
 * (verify.on_failure). Fleet targets were checked by their stage a moment ago: they get only the verify checks,
 * and a failing one is rolled back on its own and counted against its stage's failure budget.
 */
export async function runVerify(state: RunState, p: PlannedPhase): Promise<void> {
  const { ctx } = state;
  const { config } = ctx;
  const t0 = Date.now();
  const stageOf = (h: TargetRun) => config.stages.find((s) => s.name === h.stage);
  const live = [...state.runs.values()].filter(
    (h) => h.onNew && h.stage && (!stageOf(h)?.rollout || config.verify.health.length > 0),
  );
  const r = startPhase(state, { ...p, hosts: live.map((h) => h.target.name) });
  r.hosts = await mapLimit(live, config.parallel, (h) => verifyHost(state, h, stageOf(h), p.name));
  const failed = r.hosts.filter((h) => !h.ok);
  if (failed.length === 0) return endPhase(state, r, t0);
  const info: ErrorInfo = {
    class: 'health-failed',
    message: `verification failed on ${failed.map((f) => f.host).join(', ')}: ${failed[0].error?.message}`,
    phase: p.name,
  };
  const isFleet = (name: string) => !!stageOf(state.runs.get(name) as TargetRun)?.rollout;
  if (failed.every((f) => isFleet(f.host)) && config.verify.onFailure === 'rollback-all') {
    await rollbackHosts(
      state,
      failed.map((f) => f.host),
      p.name,
      r,
    );
    const over = config.stages
      .filter((s) => s.rollout)
      .map((s) =>
        fleetBudget(s, failed.filter((f) => stageOf(state.runs.get(f.host) as TargetRun) === s).length),
      )
      .find(Boolean);
    endPhase(state, r, t0, over ? info : undefined);
    if (over) throw new Stop('failed', { ...info, message: `${info.message}; ${over}` });
    state.partial ??= info;
    return;
  }
  endPhase(state, r, t0, info);
  if (config.verify.onFailure !== 'rollback-all') throw new Stop('failed', info);
  await rollbackHosts(
    state,
    live.map((h) => h.target.name),
    p.name,
    r,
  );
  r.status = state.noRollback ? 'failed' : 'rolled_back';
  throw new Stop(state.noRollback ? 'failed' : 'rolled_back', info);
}

function fleetBudget(s: StageConfig, failed: number): string | undefined {
  if (!s.rollout || failed === 0) return undefined;
  return budgetExceeded(
    { waveFailed: 0, waveSize: 1, failed, total: s.targets.length, canary: false },
    s.rollout,
  )?.reason;
}

async function verifyHost(
  state: RunState,
  h: TargetRun,
  stage: StageConfig | undefined,
  phase: string,
): Promise<HostPhaseReport> {
  const { ctx } = state;
  const h0 = Date.now();
  const checks = [...(stage?.rollout ? [] : (stage?.health ?? [])), ...ctx.config.verify.health];
  let health: HealthReport[] = [];
  let info: ErrorInfo | undefined;
  try {
    health = await requireHealthy(ctx, h.target.healthSubject(h.stage ?? phase), checks, phase);
  } catch (err) {
    if (err instanceof HealthFailed) health = err.health;
    info = ctx.errorInfo(err, { phase, host: h.target.name });
  } finally {
    if (stage?.rollout) await h.target.close().catch(() => undefined);
  }
  const durationMs = Date.now() - h0;
  ctx.emit({ type: 'host-end', phase, host: h.target.name, ok: !info, durationMs, error: info, attempt: 1 });
  return { host: h.target.name, ok: !info, durationMs, attempts: [], steps: [], health, error: info };
}
