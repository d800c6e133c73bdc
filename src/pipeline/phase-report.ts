import { mapLimit } from '../util/concurrency';
import type { StepsOutcome } from '../targets/target';
import type { ErrorInfo, HostPhaseReport, PhaseReport } from '../report/types';
import type { PlannedPhase } from '../plan/plan';
import { Stop, type RunState } from './run-state';

/** Opens a phase's report and announces it. */
export function startPhase(state: RunState, p: PlannedPhase): PhaseReport {
  const r: PhaseReport = {
    name: p.name,
    kind: p.kind,
    status: 'ok',
    startedAt: new Date().toISOString(),
    durationMs: 0,
    hosts: [],
  };
  state.phases.push(r);
  state.lastPhase = p.name;
  state.ctx.emit({ type: 'phase-start', phase: p.name, hosts: p.hosts });
  return r;
}

export function endPhase(state: RunState, r: PhaseReport, t0: number, err?: ErrorInfo): void {
  r.durationMs = Date.now() - t0;
  if (err) {
    r.status = 'failed';
    r.error = err;
  }
  state.ctx.emit({ type: 'phase-end', phase: r.name, ok: !err, durationMs: r.durationMs, error: err });
}

/** One host's result in a single-attempt phase (pre-flight, secrets, snapshot), announced as it ends. */
export function hostResult(
  state: RunState,
  phase: string,
  host: string,
  t0: number,
  res?: StepsOutcome,
  err?: unknown,
): HostPhaseReport {
  const { ctx } = state;
  const ok = !err && (res?.ok ?? true);
  const info = err ? ctx.errorInfo(err, { host, phase }) : undefined;
  const durationMs = Date.now() - t0;
  const r: HostPhaseReport = {
    host,
    ok,
    durationMs,
    attempts: [{ attempt: 1, ok, durationMs, error: info }],
    steps: res?.steps ?? [],
    health: [],
    error: info,
  };
  for (const s of r.steps) ctx.emit({ type: 'host-step', phase, host, step: s });
  ctx.emit({ type: 'host-end', phase, host, ok, durationMs, error: info, attempt: 1 });
  return r;
}

/** The first failed host's error, saying how many others failed too; undefined when every host passed. */
export function firstFailure(r: PhaseReport): ErrorInfo | undefined {
  const failed = r.hosts.filter((h) => !h.ok);
  if (failed.length === 0) return undefined;
  const info = failed[0].error ?? { class: 'internal', message: `${failed[0].host} failed`, phase: r.name };
  const n = failed.length;
  return n > 1 ? { ...info, message: `${info.message} (and ${n - 1} more host${n > 2 ? 's' : ''})` } : info;
}

export interface HostStepOutcome {
  res?: StepsOutcome;
  detail?: HostPhaseReport['detail'];
}

/**
 * A phase of one step per host before anything is deployed (pre-flight, secrets, snapshot): each host's step runs
 * once, its error becomes that host's result, and any failure aborts the run, since nothing has changed yet.
 * `whenAllPassed` runs before the phase ends, for work that needs every host (adopting rollback points).
 */
export async function abortingHostPhase(
  state: RunState,
  p: PlannedPhase,
  step: (host: string) => Promise<HostStepOutcome>,
  whenAllPassed?: () => Promise<void>,
): Promise<void> {
  const t0 = Date.now();
  const r = startPhase(state, p);
  r.hosts = await mapLimit(p.hosts, state.ctx.config.parallel, async (name) => {
    const h0 = Date.now();
    try {
      const out = await step(name);
      const rep = hostResult(state, p.name, name, h0, out.res);
      if (out.detail) rep.detail = out.detail;
      return rep;
    } catch (err) {
      return hostResult(state, p.name, name, h0, undefined, err);
    }
  });
  const failed = firstFailure(r);
  if (!failed && whenAllPassed) await whenAllPassed();
  endPhase(state, r, t0, failed);
  if (failed) throw new Stop('aborted', failed);
}
