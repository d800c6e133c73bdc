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
    // The release log and the audit log say where a cancelled run left each target it held or had changed.
    await mapLimit(
      runs.filter((h) => h.touched || (h.locked && !h.lockLost)),
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
      let unsure: string | undefined;
      const released = await h.target
        .releaseLock({ timeoutMs: cleanupTimeout(state, 30_000) })
        .catch((err: unknown) => {
          unsure = ctx.errorInfo(err).message;
          return false;
        });
      if (unsure !== undefined) {
        // Nothing of this run may go on behind the report: a target where that cannot be made sure may still be
        // changing, so it counts as touched, is read back, and is `unknown` unless it answers.
        h.touched = true;
        ctx.emit({
          type: 'log',
          level: 'warn',
          message: `${h.target.name}: ${unsure}; its lock stays, and its state is unknown until someone looks`,
        });
      } else if (released) record(state, 'lock-released', h.target.name);
      else if (h.locked)
        ctx.emit({
          type: 'log',
          level: 'warn',
          message: `${h.target.name}: the deploy lock could not be released; the action's post step or \`homelab-deploy lock release\` frees it`,
        });
      // A target the final states will not ask again gives its connection back now: at fleet width, holding them
      // all until the report would cost one socket and session per target.
      if (!readsBack(state, h)) await h.target.close().catch(() => undefined);
    },
  );
}

/** Whether the final states read a target back rather than trust the bookkeeping (see finalStates). */
function readsBack(state: RunState, h: TargetRun): boolean {
  // A fleet target whose flow ended deployed, healthy and settled is known; asking it again costs a connection each.
  const stale = !!h.rollback || (h.touched && !h.settled) || state.cancelDeadline !== undefined;
  return stale && h.attempted;
}

/**
 * Each target's final state. Where a rollback ran or the run was cut short, what is live is read back from the
 * target rather than trusted from bookkeeping; a target that cannot be read is `unknown`, never guessed. So is one
 * the run never read at all (its pre-flight failed or never ran): nothing is known of what it runs.
 */
export async function finalStates(state: RunState): Promise<HostFinalState[]> {
  return mapLimit([...state.runs.values()], state.ctx.config.parallel, async (h) => {
    let after: string | null = h.onNew ? (h.newVersion ?? state.ctx.release.id) : h.before;
    let onNew = h.onNew;
    const read = h.locked || h.lockReleased || h.touched || h.onNew || !!h.rollback;
    let unknown = !read;
    if (readsBack(state, h)) {
      try {
        const cur = await h.target.readCurrent({ timeoutMs: cleanupTimeout(state, 30_000) });
        after = cur.version;
        onNew = cur.onNew;
        unknown = false;
      } catch {
        unknown = true;
        after = null;
      }
      await h.target.close().catch(() => undefined);
    }
    if (unknown) after = null;
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
      // Never read before the end, but read then: the run changed nothing there, so it ran that before too.
      before: read || unknown ? h.before : after,
      after,
      state: hostState,
      rollback: h.rollback,
    };
  });
}
