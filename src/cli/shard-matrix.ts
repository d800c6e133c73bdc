import type { Config } from '../config/types';
import type { Plan } from '../plan/plan';
import { selectRunTargets } from '../plan/plan';

/** One entry of `plan --shards N`: `targets` feeds the action's input of the same name. */
export interface ShardEntry {
  shard: number;
  targets: string;
  hosts: number;
  /** The first wave of a fleet stage: it runs alone, before the checkpoint and the shards. */
  canary?: boolean;
}

export interface ShardMatrix {
  include: ShardEntry[];
}

/**
 * Splits the deployable targets into at most `shards` contiguous groups of near-equal size, in stage order, for a
 * GitHub Actions matrix. When a stage rolls out in waves, its canary wave is an entry of its own (`shard: 0`,
 * `canary: true`): the bulk workflow deploys it first, alone, so a bad release stops on one target, not on every
 * shard's first wave at once. Each shard then applies the failure budget to its slice; merge-reports to the whole.
 */
export function shardMatrix(config: Config, plan: Plan, shards: number, selectors?: string[]): ShardMatrix {
  const chosen = selectors?.length ? new Set(selectRunTargets(config, selectors)) : undefined;
  const all = [...new Set(config.stages.flatMap((s) => s.targets))].filter((t) => !chosen || chosen.has(t));
  const fleet = plan.phases.find((p) => p.kind === 'stage' && p.waves && p.waves.length > 1);
  const canary = fleet?.waves?.[0] ?? [];
  const inCanary = new Set(canary);
  const rest = all.filter((t) => !inCanary.has(t));
  const include: ShardEntry[] = [];
  if (canary.length)
    include.push({ shard: 0, targets: canary.join(','), hosts: canary.length, canary: true });
  const n = Math.min(shards, rest.length);
  let from = 0;
  for (let i = 0; i < n; i++) {
    const size = Math.floor(rest.length / n) + (i < rest.length % n ? 1 : 0);
    const group = rest.slice(from, from + size);
    from += size;
    include.push({ shard: i + 1, targets: group.join(','), hosts: group.length });
  }
  return { include };
}
