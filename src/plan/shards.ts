import type { Config } from '../config/types';
import { DeployError } from '../errors';

/** GitHub Actions runs at most 256 jobs from one matrix. */
export const MAX_SHARDS = 256;

export interface ShardMatrix {
  include: { shard: number; targets: string; hosts: number }[];
}

/**
 * Splits the deployable hosts into at most `shards` contiguous groups of near-equal size, in stage order, for a
 * GitHub Actions matrix (`targets` feeds the action's input of the same name).
 */
export function shardTargets(config: Config, shards: number, targets?: string[]): ShardMatrix {
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
    throw new DeployError(
      'config',
      `--shards must be a whole number from 1 to ${MAX_SHARDS} (GitHub's matrix limit), got ${shards}`,
    );
  }
  const hosts = [...new Set(config.stages.flatMap((s) => s.targets))].filter(
    (h) => !targets || targets.length === 0 || targets.includes(h),
  );
  const n = Math.min(shards, hosts.length);
  const include: ShardMatrix['include'] = [];
  let from = 0;
  for (let i = 0; i < n; i++) {
    const size = Math.floor(hosts.length / n) + (i < hosts.length % n ? 1 : 0);
    const group = hosts.slice(from, from + size);
    from += size;
    include.push({ shard: i + 1, targets: group.join(','), hosts: group.length });
  }
  return { include };
}
