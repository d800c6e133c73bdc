import type { LockOwner, LockState, OperatorLockRelease, RollbackPoint } from '../target';

/**
 * Where a target without a host of its own (a Vercel project, a platform driven from the runner) keeps what an SSH
 * host keeps in its `.homelab-deploy/` folder: the deploy lock with its owner record, the release log, the audit
 * log, rollback points and a "needs a human" record. Keyed by target name, so one store serves a whole fleet.
 *
 * Guarantees every implementation gives: taking a lock is atomic and the owner record exists from the moment the
 * lock does; only the owner (by run token) releases or refreshes it; appends are whole lines; a rollback point is
 * replaced atomically. Implementations say in their own comment what they do NOT guarantee (e.g. a directory on a
 * GitHub-hosted runner does not outlive the job).
 */
export interface StateStore {
  /** Where the state lives, for messages and the README ("/var/lib/homelab-deploy/shop", "thinkpad:/srv/state"). */
  readonly describe: string;

  /**
   * Takes `target`'s lock for `owner`. Held by another live owner: resolves `{ ok: false, holder, ageSeconds }`.
   * A stale lock (heartbeat older than `staleAfterMs`) is taken over only when `takeoverStale`, and then resolves
   * `{ ok: true, tookOverFrom }`. Held by this run already (same token): `{ ok: true, ours: true }`.
   */
  lock(
    target: string,
    owner: LockOwner,
    opts: { staleAfterMs: number; takeoverStale: boolean },
  ): Promise<
    | { ok: true; ours?: boolean; tookOverFrom?: LockOwner | null }
    | { ok: false; holder: LockOwner | null; ageSeconds: number }
  >;
  /** Refreshes the heartbeat of a lock `token` holds; false when it is not held by `token` any more. */
  heartbeat(target: string, token: string): Promise<boolean>;
  /** Releases the lock only if `token` holds it; true when released. */
  unlock(target: string, token: string): Promise<boolean>;
  /** The lock as an operator sees it. */
  lockState(target: string, staleAfterMs: number): Promise<LockState>;
  /** `lock release` by an operator: refuses a live lock unless `force`; audited with the previous owner. */
  releaseAsOperator(
    target: string,
    opts: { operator: string; force: boolean; staleAfterMs: number },
  ): Promise<OperatorLockRelease>;

  /** Appends one JSON line to the target's release log / audit log. */
  appendReleaseLog(target: string, entry: Record<string, unknown>): Promise<void>;
  appendAudit(target: string, entry: Record<string, unknown>): Promise<void>;
  /** The whole release log (JSON lines), '' when there is none. */
  readReleaseLog(target: string): Promise<string>;
  /** The last `n` audit lines. */
  readAudit(target: string, n: number): Promise<string>;

  writeRollbackPoint(target: string, point: RollbackPoint): Promise<void>;
  readRollbackPoint(target: string, release: string): Promise<RollbackPoint | undefined>;
  /** Rollback points recorded for the target, newest first. */
  listRollbackPoints(target: string, limit: number): Promise<RollbackPoint[]>;

  /** A record that a human must look at the target (a failed rollback); `null` clears it. */
  setNeedsAttention(target: string, record: Record<string, unknown> | null): Promise<void>;
  getNeedsAttention(target: string): Promise<Record<string, unknown> | undefined>;
}
