import type { RunContext } from '../run/context';
import type { LockOwner } from './target';

/** The owner record a run writes into every lock it takes, whatever the kind of target. */
export function lockOwner(
  run: Pick<RunContext, 'release' | 'run' | 'runToken'>,
  target: string,
  phase: string,
): LockOwner {
  const now = new Date().toISOString();
  return {
    token: run.runToken,
    runId: run.run.id,
    runUrl: run.run.url,
    actor: run.run.actor,
    commit: run.release.commit,
    release: run.release.id,
    phase,
    host: target,
    startedAt: now,
    heartbeatAt: now,
  };
}
