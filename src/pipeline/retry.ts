import type { RetryPolicy } from '../config/types';

/** Delay before attempt `next` (2-based): delay × factor^(next-2), capped, ± jitter so hosts do not retry in lockstep. */
export function backoffDelay(policy: RetryPolicy, next: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.delayMs * policy.factor ** Math.max(0, next - 2));
  const spread = base * policy.jitter;
  return Math.max(0, Math.round(base - spread + random() * 2 * spread));
}
