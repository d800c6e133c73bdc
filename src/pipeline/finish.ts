import { appendReleaseLog, readCurrent, releaseLock, restoreEnvFile } from '../deploy/host-ops';
import { mapLimit } from '../util/concurrency';
import type { DeployStatus, HostFinalState, HostState } from '../report/types';
import { cleanupTimeout, record, type HostRun, type RunState } from './run-state';

/**
 * What every run does on its way out, whatever happened: env files go back where the host does not end on the
 * new release (or the run aborted: "nothing changed" includes them), and the lock is released on every host
 * pre-flight reached, also one where pre-flight was cut short after taking it (the release is token-guarded,
 * so another run's lock is never touched). Under cancellation everything here fits the remaining budget.
 */
export async function cleanUp(state: RunState, status: DeployStatus): Promise<void> {
  const { ctx } = state;
  const { config } = ctx;
  const restore = [...state.hosts.values()].filter(
    (h) => h.envWritten && !h.rollback?.ok && (status === 'aborted' || !h.onNew),
  );
  await mapLimit(restore, config.parallel, async (h) => {
    const ok = await restoreEnvFile(ctx, h.host, { timeoutMs: cleanupTimeout(state, 30_000, 1000) }).then(
      (res) => res?.ok !== false,
      () => false,
    );
    if (ok) record(state, 'env-restored', h.host.name, config.secrets?.file);
    else
      ctx.emit({
        type: 'log',
        level: 'warn',
        message: `${h.host.name}: restoring ${config.secrets?.file} failed; it holds this run's values while running ${h.before ?? 'nothing'}`,
      });
  });
  if (state.cancelDeadline !== undefined) {
    // The release log says where a cancelled run left each host it had started to change.
    await mapLimit(
      [...state.hosts.values()].filter((h) => h.touched),
      config.parallel,
      (h) =>
        appendReleaseLog(
          ctx,
          h.host,
          { event: 'cancelled', stage: h.stage, previous: h.before, result: 'cancelled' },
          { timeoutMs: cleanupTimeout(state, 30_000, 500) },
        ).catch(() => undefined),
    );
  }
  await mapLimit(
    [...state.hosts.values()].filter((h) => h.attempted && !h.lockHandedOver && !h.lockLost),
    config.parallel,
    async (h) => {
      const released = await releaseLock(ctx, h.host, { timeoutMs: cleanupTimeout(state, 30_000) }).catch(
        () => false,
      );
      if (released) record(state, 'lock-released', h.host.name);
      else if (h.locked)
        ctx.emit({
          type: 'log',
          level: 'warn',
          message: `${h.host.name}: the deploy lock could not be released; the action's post step or \`homelab-deploy lock release\` frees it`,
        });
    },
  );
}

/**
 * Each host's final state. Where a rollback ran or the run was cut short, `current` is read back from the host
 * rather than trusted from bookkeeping; a host that cannot be read is `unknown`, never guessed.
 */
export async function finalStates(state: RunState): Promise<HostFinalState[]> {
  const { ctx } = state;
  const readBack = (h: HostRun) => !!h.rollback || h.touched || state.cancelDeadline !== undefined;
  return mapLimit([...state.hosts.values()], ctx.config.parallel, async (h) => {
    let after: string | null = h.onNew ? ctx.release.id : h.before;
    let unknown = false;
    if (readBack(h) && h.attempted) {
      after = await readCurrent(ctx, h.host, { timeoutMs: cleanupTimeout(state, 30_000) }).catch(() => {
        unknown = true;
        return null;
      });
    }
    const hostState: HostState = unknown
      ? 'unknown'
      : after === ctx.release.id
        ? h.before === ctx.release.id
          ? 'unchanged'
          : 'new'
        : after === null
          ? 'none'
          : 'previous';
    return {
      host: h.host.name,
      stage: h.stage,
      before: h.before,
      after,
      state: hostState,
      rollback: h.rollback,
    };
  });
}
