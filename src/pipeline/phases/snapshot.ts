import { abortingHostPhase } from '../phase-report';
import type { PlannedPhase } from '../../plan/plan';
import { record, targetRun, type RunState } from '../run-state';

/**
 * Records each target's rollback point and, where configured, takes an infrastructure snapshot first (if that
 * fails, the target has not been changed by the deploy yet). A target already on this release keeps the point an
 * earlier job recorded, and gets no second infrastructure snapshot.
 */
export function runSnapshot(state: RunState, p: PlannedPhase): Promise<void> {
  const { ctx } = state;
  return abortingHostPhase(state, p, async (name) => {
    const h = targetRun(state, name);
    const out = await h.target.snapshot(h.onNew ? undefined : h.before, { infra: !h.onNew });
    for (const w of out.warnings ?? [])
      ctx.emit({
        type: 'log',
        level: 'warn',
        message: `${name}: snapshot ${out.point?.infraSnapshot ?? ''}: ${w}`,
      });
    if (out.point) h.before = out.point.previous;
    else if (h.onNew) h.noRollbackPoint = true;
    h.infraSnapshot = out.point?.infraSnapshot;
    record(
      state,
      'snapshot',
      name,
      `rollback point: ${h.noRollbackPoint ? '(none recorded)' : (h.before ?? '(none)')}`,
    );
    return { res: out.steps, detail: { rollbackTo: h.noRollbackPoint ? null : h.before } };
  });
}
