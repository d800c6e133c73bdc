import type { LockOwner } from '../target';

/** The lock owner record in the first line of `text`, or undefined when there is none readable. */
export function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text.trim().split('\n')[0]) as LockOwner;
    return typeof o === 'object' && o && typeof o.token === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** "alice (run https://..., commit 0123456789ab, phase production) since ..." — who holds a lock. */
export function describeHolder(owner: LockOwner | null): string {
  if (!owner) return 'an unknown owner (no readable owner record)';
  return `${owner.actor ?? 'an unknown actor'} (run ${owner.runUrl ?? owner.runId ?? owner.token}, commit ${(owner.commit ?? '?').slice(0, 12)}, phase ${owner.phase}) since ${owner.startedAt}`;
}
