import { recordRollbackPoint, type RollbackPoint } from '../../deploy/host-ops';
import { auditSnapshotActions } from '../../snapshot/audit';
import { SnapshotActionError, snapshotName, snapshotProvider } from '../../snapshot/provider';
import { abortingHostPhase } from '../phase-report';
import type { PlannedPhase } from '../plan';
import { hostRun, record, type RunState } from '../run-state';

/**
 * Records each host's rollback point and, where configured, takes an infrastructure snapshot first (if that
 * fails, the host has not been changed by the deploy yet). A host already on this release keeps the point an
 * earlier job recorded, and gets no second infrastructure snapshot.
 */
export function runSnapshot(state: RunState, p: PlannedPhase): Promise<void> {
  const { ctx } = state;
  return abortingHostPhase(state, p, async (name) => {
    const h = hostRun(state, name);
    try {
      let infra: string | undefined;
      if (h.host.snapshot && !h.onNew) {
        const provider = snapshotProvider(ctx, h.host, h.host.snapshot);
        infra = snapshotName(ctx.release.id, ctx.runToken);
        const made = await provider.create(infra);
        record(state, 'snapshot', name, `${provider.describe} snapshot ${infra}`);
        for (const w of made.warnings ?? [])
          ctx.emit({ type: 'log', level: 'warn', message: `${name}: snapshot ${infra}: ${w}` });
        await auditSnapshotActions(ctx, h.host, [made]);
      }
      const res = await recordRollbackPoint(ctx, h.host, h.onNew ? undefined : h.before, infra);
      const point = JSON.parse(
        (res.outputs['rollback-point'] ?? '').trim().split('\n').pop() || '{}',
      ) as Partial<RollbackPoint>;
      if (point.previous !== undefined) h.before = point.previous;
      else if (h.onNew) h.noRollbackPoint = true;
      h.infraSnapshot = point.infraSnapshot;
      record(
        state,
        'snapshot',
        name,
        `rollback point: ${h.noRollbackPoint ? '(none recorded)' : (h.before ?? '(none)')}`,
      );
      return { res, detail: { rollbackTo: h.noRollbackPoint ? null : h.before } };
    } catch (err) {
      if (err instanceof SnapshotActionError)
        await auditSnapshotActions(ctx, h.host, err.actions).catch(() => undefined);
      throw err;
    }
  });
}
