import { mapLimit } from '../../util/concurrency';
import type { ErrorInfo, HealthReport, HostPhaseReport } from '../../report/types';
import { HealthFailed, requireHealthy } from '../health-gate';
import { endPhase, startPhase } from '../phase-report';
import type { PlannedPhase } from '../../plan/plan';
import { rollbackHosts } from '../rollback';
import { Stop, type RunState, type TargetRun } from '../run-state';

/**
 * Runs every stage's checks and the verify checks against every host that runs the new release. A failure, or
 * any error while checking (a host that dropped), rolls back everything unless the config says not to (verify.on_failure).
 */
export async function runVerify(state: RunState, p: PlannedPhase): Promise<void> {
  const { ctx } = state;
  const { config } = ctx;
  const t0 = Date.now();
  const live = [...state.runs.values()].filter((h) => h.onNew && h.stage);
  const r = startPhase(state, { ...p, hosts: live.map((h) => h.target.name) });
  r.hosts = await mapLimit(live, config.parallel, (h) => verifyHost(state, h, p.name));
  const failed = r.hosts.filter((h) => !h.ok);
  if (failed.length === 0) return endPhase(state, r, t0);
  const info: ErrorInfo = {
    class: 'health-failed',
    message: `verification failed on ${failed.map((f) => f.host).join(', ')}: ${failed[0].error?.message}`,
    phase: p.name,
  };
  endPhase(state, r, t0, info);
  if (config.verify.onFailure !== 'rollback-all') throw new Stop('failed', info);
  await rollbackHosts(
    state,
    live.map((h) => h.target.name),
    p.name,
    r,
  );
  r.status = 'rolled_back';
  throw new Stop('rolled_back', info);
}

async function verifyHost(state: RunState, h: TargetRun, phase: string): Promise<HostPhaseReport> {
  const { ctx } = state;
  const h0 = Date.now();
  const stage = ctx.config.stages.find((s) => s.name === h.stage);
  const checks = [...(stage?.health ?? []), ...ctx.config.verify.health];
  let health: HealthReport[] = [];
  let info: ErrorInfo | undefined;
  try {
    health = await requireHealthy(ctx, h.target.healthSubject(h.stage ?? phase), checks, phase);
  } catch (err) {
    if (err instanceof HealthFailed) health = err.health;
    info = ctx.errorInfo(err, { phase, host: h.target.name });
  }
  const durationMs = Date.now() - h0;
  ctx.emit({ type: 'host-end', phase, host: h.target.name, ok: !info, durationMs, error: info, attempt: 1 });
  return { host: h.target.name, ok: !info, durationMs, attempts: [], steps: [], health, error: info };
}
