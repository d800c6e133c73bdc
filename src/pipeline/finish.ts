import type { DeployStatus, HostFinalState, HostState } from '../report/types';
import { mapLimit } from '../util/concurrency';
import { cleanupTimeout, record, type RunState, type TargetRun } from './run-state';

/**
 * What every run does on its way out, whatever happened: env files go back where the target does not end on the
 * new release (or the run aborted: "nothing changed" includes them), and the lock is released on every target
 * pre-flight reached, also one where pre-flight was cut short after taking it (the release is token-guarded,
 * so another run's lock is never touched). Under cancellation everything here fits the remaining budget.
 */
export async function cleanUp(state: RunState, status: DeployStatus): Promise<void> {
  const { ctx } = state;
  const { config } = ctx;
  const runs = [...state.runs.values()];
  const restore = runs.filter((h) => h.envWritten && !h.rollback?.ok && (status === 'aborted' || !h.onNew));
  await mapLimit(restore, config.parallel, async (h) => {
    const ok = await (
      h.target.restoreSecrets?.({ timeoutMs: cleanupTimeout(state, 30_000, 1000) }) ??
      Promise.resolve(undefined)
    ).then(
      (res) => res?.ok !== false,
      () => false,
    );
    if (ok) record(state, 'env-restored', h.target.name, config.secrets?.file);
    else
      ctx.emit({
        type: 'log',
        level: 'warn',
        message: `${h.target.name}: restoring ${config.secrets?.file} failed; it holds this run's values while running ${h.before ?? 'nothing'}`,
      });
  });
  if (state.cancelDeadline !== undefined) {
    // The release log and the audit log say where a cancelled run left each target it had started to change.
    await mapLimit(
      runs.filter((h) => h.touched),
      config.parallel,
      (h) =>
        h.target
          .appendLog(
            { event: 'cancelled', stage: h.stage, previous: h.before, result: 'cancelled' },
            { timeoutMs: cleanupTimeout(state, 30_000, 500) },
          )
          .catch(() => undefined),
    );
  }
  await mapLimit(
    runs.filter((h) => h.attempted && !h.lockHandedOver && !h.lockLost && !h.lockReleased),
    config.parallel,
    async (h) => {
      const released = await h.target
        .releaseLock({ timeoutMs: cleanupTimeout(state, 30_000) })
        .catch(() => false);
      if (released) record(state, 'lock-released', h.target.name);
      else if (h.locked)
        ctx.emit({
          type: 'log',
          level: 'warn',
          message: `${h.target.name}: the deploy lock could not be released; the action's post step or \`homelab-deploy lock release\` frees it`,
        });
    },
  );
}

/**
 * Each target's final state. Where a rollback ran or the run was cut short, what is live is read back from the
 * target rather than trusted from bookkeeping; a target that cannot be read is `unknown`, never guessed.
 */
export async function finalStates(state: RunState): Promise<HostFinalState[]> {
  // A fleet target whose flow ended deployed, healthy and settled is known; asking it again costs a connection each.
  const readBack = (h: TargetRun) =>
    !!h.rollback || (h.touched && !h.settled) || state.cancelDeadline !== undefined;
  return mapLimit([...state.runs.values()], state.ctx.config.parallel, async (h) => {
    let after: string | null = h.onNew ? (h.newVersion ?? state.ctx.release.id) : h.before;
    let onNew = h.onNew;
    let unknown = false;
    if (readBack(h) && h.attempted) {
      try {
        const cur = await h.target.readCurrent({ timeoutMs: cleanupTimeout(state, 30_000) });
        after = cur.version;
        onNew = cur.onNew;
      } catch {
        unknown = true;
        after = null;
      }
    }
    const hostState: HostState = unknown
      ? 'unknown'
      : onNew
        ? h.before !== null && h.before === (h.newVersion ?? state.ctx.release.id)
          ? 'unchanged'
          : 'new'
        : after === null
          ? 'none'
          : 'previous';
    return {
      host: h.target.name,
      kind: h.target.kind,
      stage: h.stage,
      before: h.before,
      after,
      state: hostState,
      rollback: h.rollback,
    };
  });
}
