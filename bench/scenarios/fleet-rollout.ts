import { readReport, reportTimings } from '../tools/report-file';
import { deployAndVerify, measurement, noteTimeout, slug } from './deploy-run';
import { fleetTools, FLEET_ROLLOUT, skippedForTimeout } from './fleet-tools';
import type { Measurement, Scenario, Timing } from './types';

/**
 * A redeploy of the whole fleet in waves (a canary, then 10 %, 50 % and the rest, with a 5 % failure budget),
 * after an untimed first deploy. The run's report gives each wave's duration; every host's end state is read
 * back. The ssh2 baseline redeploys the same fleet without waves, for the ratio.
 */
export const fleetRollout: Scenario = {
  name: 'fleet-rollout',
  description: `first deploy (untimed), then a timed redeploy with rollout ${JSON.stringify(FLEET_ROLLOUT.waves)}, max_fail_percentage ${FLEET_ROLLOUT.max_fail_percentage}, --yes; per-wave durations from the report`,
  byDefault: false,
  defaultSizes: [1500],
  async run(ctx) {
    const measurements: Measurement[] = [];
    const timings: Timing[] = [];
    const notes: string[] = [];
    for (const tool of fleetTools(ctx)) {
      const skipped = skippedForTimeout(ctx, tool);
      if (skipped) {
        measurements.push({ ...measurement(ctx, tool, 'rollout'), failure: skipped });
        continue;
      }
      ctx.resetHosts();
      const base = `rollout-${slug(tool.label)}`;
      ctx.log(`${tool.label}: warm-up deploy to ${ctx.n} hosts`);
      const warm = await deployAndVerify(ctx, tool, `${base}-1`, undefined);
      if (warm.failure) {
        if (warm.figures.timedOut) noteTimeout(ctx, tool.label);
        measurements.push({
          ...measurement(ctx, tool, 'rollout'),
          failure: `warm-up deploy: ${warm.failure}`,
        });
        continue;
      }
      ctx.log(`${tool.label}: timed redeploy${tool.family === 'homelab' ? ' in waves' : ''}`);
      const timed = await deployAndVerify(ctx, tool, `${base}-2`, warm.prepared);
      if (timed.figures.timedOut) noteTimeout(ctx, tool.label);
      measurements.push(measurement(ctx, tool, 'rollout', timed));
      if (!timed.failure)
        ctx.hostsAt = { tool: tool.label, current: timed.prepared, previous: warm.prepared };
      if (tool.family !== 'homelab') continue;
      const report = readReport(timed.prepared.reportFile);
      if (typeof report === 'string') {
        notes.push(`fleet-rollout / ${tool.label} N=${ctx.n}: ${report}`);
        continue;
      }
      if (!report.waves?.length)
        notes.push(
          `fleet-rollout / ${tool.label} N=${ctx.n}: the report has no waves (status ${report.status})`,
        );
      timings.push(
        {
          tool: tool.label,
          label: `rollout N=${ctx.n}: wall (CLI start to exit)`,
          seconds: timed.figures.wallMs / 1000,
        },
        ...reportTimings(tool.label, `rollout N=${ctx.n}`, report),
      );
    }
    return { measurements, timings, notes };
  },
};
