import type { Config, VercelTargetConfig } from '../config/types';
import type { Plan } from '../plan/plan';
import { inWindow, nextOpening } from '../plan/window';
import { estimate, type Estimate } from '../targets/vercel/pacing';
import { formatDuration } from '../util/duration';

/**
 * How long one Vercel deployment is assumed to take, creation to READY plus its checks, for the cost prediction.
 * Builds vary from seconds to many minutes; the figure scales linearly, and the plan says which one it used.
 */
export const ASSUMED_VERCEL_DEPLOY_SECONDS = 60;

/** The cost of one stage's Vercel targets, before anything runs. */
export interface StageCost {
  stage: string;
  /** The Vercel team the targets share a quota with ('' for the token's own account). */
  team: string;
  plan: VercelTargetConfig['limits']['plan'];
  concurrency: number;
  assumedDeploySeconds: number;
  estimate: Estimate;
}

/** Per stage and team: deployments this run creates, their share of the daily quota, the expected wall time. */
export function vercelCosts(config: Config, plan: Plan): StageCost[] {
  const out: StageCost[] = [];
  for (const p of plan.phases) {
    if (p.kind !== 'stage' || !p.stage) continue;
    const byTeam = new Map<string, VercelTargetConfig[]>();
    for (const name of p.hosts) {
      const t = config.targets[name];
      if (t?.kind !== 'vercel') continue;
      const key = t.team ?? '';
      byTeam.set(key, [...(byTeam.get(key) ?? []), t]);
    }
    for (const [team, targets] of byTeam) {
      const limits = targets[0].limits;
      out.push({
        stage: p.name,
        team,
        plan: limits.plan,
        concurrency: p.stage.parallel,
        assumedDeploySeconds: ASSUMED_VERCEL_DEPLOY_SECONDS,
        estimate: estimate({
          targets: targets.map((t) => ({ promote: t.promote })),
          concurrency: p.stage.parallel,
          plan: limits.plan,
          limits: { concurrentBuilds: limits.concurrentBuilds, deploymentsPerDay: limits.deploymentsPerDay },
          perDeploySeconds: ASSUMED_VERCEL_DEPLOY_SECONDS,
        }),
      });
    }
  }
  return out;
}

const pct = (share: number) => `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`;

/** The checkpoint, the deploy window and the cost of Vercel targets, as lines under the plan. */
export function planNotes(config: Config, plan: Plan, now = new Date()): string[] {
  const lines: string[] = [];
  const n = plan.deploying.length;
  const above = config.checkpointAbove;
  const fleet = plan.phases.some((p) => p.waves && p.waves.length > 1);
  // A homelab's three hosts need no checkpoint line; a fleet, or a run that would be stopped by it, does.
  if (n > 0 && (fleet || n > above))
    lines.push(
      n > above
        ? `Checkpoint: this run deploys to ${n} targets, more than checkpoint.above (${above}): it needs a confirmation (run --yes, a "y" at the prompt, or the bulk workflow's approval)`
        : `Checkpoint: this run deploys to ${n} target${n === 1 ? '' : 's'} (checkpoint.above ${above}): no confirmation needed`,
    );
  for (const p of plan.phases)
    if (p.waves && p.waves.length > 1)
      lines.push(
        `  ${p.name}: wave 1 (canary) touches ${p.waves[0].length}, then ${p.waves
          .slice(1)
          .map((w) => w.length)
          .join(', ')}`,
      );
  const w = config.window;
  if (w && n > 0) {
    if (inWindow(w, now)) lines.push(`Deploy window ${w.text}: open now`);
    else {
      const opens = nextOpening(w, now);
      lines.push(
        `Deploy window ${w.text}: CLOSED now; ${opens ? `it opens next at ${opens.toISOString()}` : 'it does not open within two weeks'}. A run refuses outside it (--wait-window waits, --ignore-window deploys anyway, audited)`,
      );
    }
  }
  for (const c of vercelCosts(config, plan)) {
    const e = c.estimate;
    lines.push(
      `Vercel cost, ${c.stage}${c.team ? ` (team ${c.team})` : ''}: ${e.deployments} deployment${e.deployments === 1 ? '' : 's'} for ${e.targets} project${e.targets === 1 ? '' : 's'}, ${pct(e.quotaShare)} of the daily quota (${e.deploymentsPerDay}, plan ${c.plan}); about ${formatDuration(e.expectedWallSeconds * 1000)} at ${e.parallelBuilds} build${e.parallelBuilds === 1 ? '' : 's'} at once (parallel ${c.concurrency}, assuming ${c.assumedDeploySeconds}s per deployment)`,
    );
    for (const note of e.notes) lines.push(`  note: ${note}`);
  }
  return lines;
}
