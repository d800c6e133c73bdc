import { readReport, reportTimings } from '../tools/report-file';
import type { DeployTool, PreparedRelease } from '../tools/tool';
import { deployAndVerify, measurement, noteTimeout, runFailure, slug } from './deploy-run';
import { fleetTools, skippedForTimeout } from './fleet-tools';
import { Interrupted, type Measurement, type Scenario, type ScenarioContext, type Timing } from './types';

/** Two verified deploys in a row, so every host has a release to go back to; or what a rollout left. */
async function twoReleases(
  ctx: ScenarioContext,
  tool: DeployTool,
): Promise<{ from: PreparedRelease; to: PreparedRelease; reused: boolean } | string> {
  const at = ctx.hostsAt;
  if (at?.tool === tool.label) return { from: at.current, to: at.previous, reused: true };
  ctx.resetHosts();
  const base = `rollback-${slug(tool.label)}`;
  ctx.log(`${tool.label}: two deploys to ${ctx.n} hosts before the rollback`);
  const first = await deployAndVerify(ctx, tool, `${base}-1`, undefined);
  if (first.failure) {
    if (first.figures.timedOut) noteTimeout(ctx, tool.label);
    return `first deploy: ${first.failure}`;
  }
  const second = await deployAndVerify(ctx, tool, `${base}-2`, first.prepared);
  if (second.failure) {
    if (second.figures.timedOut) noteTimeout(ctx, tool.label);
    return `second deploy: ${second.failure}`;
  }
  return { from: second.prepared, to: first.prepared, reused: false };
}

/**
 * A rollback of the whole fleet after a redeploy: `rollback --to previous --yes` (the baseline: lock, read the
 * recorded previous release, switch, check, unlock on every host), timed; then every host's `current`, REVISION
 * and env file are read back. Starts from what fleet-rollout left on the hosts when it ran just before with the
 * same tool, which saves two deploys of the fleet.
 */
export const fleetRollback: Scenario = {
  name: 'fleet-rollback',
  description:
    'two deploys (untimed, or the rollout just before), then a timed `rollback --to previous --yes` of every host; current, REVISION and env file checked on every host',
  byDefault: false,
  defaultSizes: [1500],
  async run(ctx) {
    const measurements: Measurement[] = [];
    const timings: Timing[] = [];
    const notes: string[] = [];
    const tools = fleetTools(ctx);
    // What the hosts hold already goes first: its rollback needs no deploys.
    tools.sort((a, b) => Number(b.label === ctx.hostsAt?.tool) - Number(a.label === ctx.hostsAt?.tool));
    for (const tool of tools) {
      const skipped = skippedForTimeout(ctx, tool);
      if (skipped) {
        measurements.push({ ...measurement(ctx, tool, 'rollback'), failure: skipped });
        continue;
      }
      const releases = await twoReleases(ctx, tool);
      if (typeof releases === 'string') {
        measurements.push({ ...measurement(ctx, tool, 'rollback'), failure: releases });
        continue;
      }
      if (releases.reused)
        notes.push(
          `fleet-rollback / ${tool.label} N=${ctx.n}: rolled back what fleet-rollout had just deployed (${releases.from.release} -> ${releases.to.release})`,
        );
      const rb = tool.prepareRollback(releases.from, releases.to);
      ctx.log(`${tool.label}: timed rollback of ${ctx.n} hosts`);
      ctx.hostsAt = undefined;
      const figures = await ctx.measure(rb.command, `rollback-${slug(tool.label)}-${releases.from.release}`);
      if (figures.interrupted) throw new Interrupted();
      const bad = rb.verify().filter((h) => h.problems.length);
      if (figures.timedOut) noteTimeout(ctx, tool.label);
      const failure = runFailure(ctx, figures, bad, `not back on ${releases.to.release}`);
      measurements.push({
        ...measurement(ctx, tool, 'rollback'),
        figures,
        verifiedHosts: ctx.n - bad.length,
        failure,
      });
      timings.push({
        tool: tool.label,
        label: `rollback N=${ctx.n}: wall (start to exit)`,
        seconds: figures.wallMs / 1000,
      });
      if (tool.family !== 'homelab') continue;
      const report = readReport(rb.reportFile);
      if (typeof report === 'string') notes.push(`fleet-rollback / ${tool.label} N=${ctx.n}: ${report}`);
      else timings.push(...reportTimings(tool.label, `rollback N=${ctx.n}`, report));
    }
    return { measurements, timings, notes };
  },
};
