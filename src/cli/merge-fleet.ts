import type { Config } from '../config/types';
import type { EscalationReport, Report } from '../report/types';

const uniq = (a: string[]) => [...new Set(a)];

/** The fleet parts of the shards' reports the plain merge leaves out: waves, escalations, who needs a human. */
function carryOver(merged: Report, shards: Report[]): Report {
  const waves = shards.flatMap((r) => r.waves ?? []);
  const attention = uniq([
    ...shards.flatMap((r) => r.needsAttention ?? []),
    // A shard that never reported: nobody knows what its targets run.
    ...merged.hosts.filter((h) => h.state === 'unknown').map((h) => h.host),
  ]);
  const notRolledBack = uniq(shards.flatMap((r) => r.notRolledBack ?? []));
  const left = shards.flatMap((r) => r.left?.targets ?? []);
  return {
    ...merged,
    waves: waves.length ? waves : merged.waves,
    escalation: merged.escalation ?? shards.find((r) => r.escalation)?.escalation,
    needsAttention: attention.length ? attention : undefined,
    notRolledBack: notRolledBack.length ? notRolledBack : undefined,
    left: left.length
      ? { targets: left, reason: shards.find((r) => r.left)?.left?.reason ?? 'left untouched by a shard' }
      : merged.left,
  };
}

/**
 * The failure budget over the whole fleet, which no single shard can see: each shard applied it to its slice, so
 * twenty shards each just under `max_fail` can together be far over it. Counts, per fleet stage, the targets
 * that failed in any shard (and those of shards that never reported) against the stage's targets in the reports.
 */
export function overallBudget(report: Report, config: Config): EscalationReport | undefined {
  for (const s of config.stages) {
    const r = s.rollout;
    if (!r || (r.maxFailPercentage === undefined && r.maxFail === undefined)) continue;
    const inStage = new Set(s.targets);
    const hosts = report.hosts.filter((h) => inStage.has(h.host));
    if (!hosts.length) continue;
    const failedHosts = new Map<string, string>();
    for (const p of report.phases)
      for (const h of p.hosts)
        if (!h.ok && inStage.has(h.host) && !failedHosts.has(h.host))
          failedHosts.set(h.host, h.error?.class ?? 'internal');
    for (const h of hosts)
      if (h.state === 'unknown' && !failedHosts.has(h.host)) failedHosts.set(h.host, 'unknown');
    const failed = failedHosts.size;
    const rate = failed / hosts.length;
    const overPercent = r.maxFailPercentage !== undefined && rate * 100 > r.maxFailPercentage;
    const overCount = r.maxFail !== undefined && failed > r.maxFail;
    if (!overPercent && !overCount) continue;
    const classes: Record<string, number> = {};
    for (const c of failedHosts.values()) classes[c] = (classes[c] ?? 0) + 1;
    const limit = overPercent ? `max_fail_percentage ${r.maxFailPercentage}%` : `max_fail ${r.maxFail}`;
    const lastWave = Math.max(
      0,
      ...(report.waves ?? []).filter((w) => w.stage === s.name).map((w) => w.index),
    );
    return {
      stage: s.name,
      wave: lastWave,
      reason: `${failed} of ${hosts.length} targets failed across all shards (${(rate * 100).toFixed(1)}%), more than ${limit} for the whole fleet`,
      rate,
      classes,
      firstFailing: [...failedHosts.keys()].slice(0, 10),
    };
  }
  return undefined;
}

/**
 * Completes the merge of a bulk deploy's shards: the fleet parts of each shard's report, and, with the config,
 * the overall failure budget. A budget passed over the whole fleet is an escalation in the merged report (its
 * first line, the `escalated` output); the status stays what the shards made it, as every shard has ended.
 */
export function completeShardMerge(merged: Report, shards: Report[], config?: Config): Report {
  const out = carryOver(merged, shards);
  if (!config || out.escalation) return out;
  const escalation = overallBudget(out, config);
  return escalation ? { ...out, escalation } : out;
}
