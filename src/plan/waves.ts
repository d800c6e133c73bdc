import type { RolloutSettings, WaveSize } from '../config/types';

/** How many targets a wave of `size` takes when the stage holds `total` (a percentage rounds up: 10% of 5 is 1). */
export function waveCount(size: WaveSize, total: number): number {
  // percent × total first: (7 / 100) × 100 is 7.000000000000001 in floating point, which would round up to 8.
  return 'count' in size ? size.count : Math.max(1, Math.ceil((size.percent * total) / 100 - 1e-9));
}

/**
 * Splits a stage's targets into waves, in order: each wave takes its size of what is left, the last size repeats
 * until every target has a wave (Ansible's `serial`). The first wave is the canary.
 */
export function splitWaves(targets: string[], rollout: Pick<RolloutSettings, 'waves'>): string[][] {
  const waves: string[][] = [];
  let at = 0;
  for (let i = 0; at < targets.length; i++) {
    const size = rollout.waves[Math.min(i, rollout.waves.length - 1)];
    const n = Math.min(waveCount(size, targets.length), targets.length - at);
    waves.push(targets.slice(at, at + n));
    at += n;
  }
  return waves;
}

/** How many failures a wave of `size` tolerates under `maxFailPercentage` (more than this passes the budget). */
export function tolerated(size: number, maxFailPercentage: number | undefined): number {
  if (maxFailPercentage === undefined) return Infinity;
  return Math.floor((maxFailPercentage / 100) * size + 1e-9);
}

export interface BudgetState {
  /** Failed targets of the wave running now, and its size. */
  waveFailed: number;
  waveSize: number;
  /** Failed targets of the stage so far, and its size. */
  failed: number;
  total: number;
  /** The wave is the first (the canary): any failure stops the rollout. */
  canary: boolean;
}

export interface BudgetVerdict {
  reason: string;
  /** Which budget was passed: the wave's own (the canary's included), or the stage's over all waves so far. */
  scope: 'wave' | 'overall';
}

/** Why the rollout must stop, or undefined while it is within its failure budget. */
export function budgetExceeded(
  b: BudgetState,
  r: Pick<RolloutSettings, 'maxFail' | 'maxFailPercentage'>,
): BudgetVerdict | undefined {
  if (b.canary && b.waveFailed > 0)
    return {
      scope: 'wave',
      reason: `the canary wave failed (${b.waveFailed} of ${b.waveSize} target${b.waveSize === 1 ? '' : 's'})`,
    };
  const pct = (n: number, of: number) => `${Math.round((n / of) * 1000) / 10}%`;
  if (r.maxFailPercentage !== undefined && b.waveFailed > tolerated(b.waveSize, r.maxFailPercentage))
    return {
      scope: 'wave',
      reason: `${b.waveFailed} of ${b.waveSize} targets of the wave failed (${pct(b.waveFailed, b.waveSize)}, more than max_fail_percentage ${r.maxFailPercentage}%)`,
    };
  if (r.maxFailPercentage !== undefined && b.failed > tolerated(b.total, r.maxFailPercentage))
    return {
      scope: 'overall',
      reason: `${b.failed} of ${b.total} targets of the stage failed (${pct(b.failed, b.total)}, more than max_fail_percentage ${r.maxFailPercentage}%)`,
    };
  if (r.maxFail !== undefined && b.failed > r.maxFail)
    return { scope: 'overall', reason: `${b.failed} targets failed, more than max_fail ${r.maxFail}` };
  return undefined;
}
