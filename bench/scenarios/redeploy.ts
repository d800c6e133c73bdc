import { deployAndVerify, measurement, noteTimeout, slug } from './deploy-run';
import type { Measurement, Scenario } from './types';

/**
 * The headline figure: on fresh hosts, an untimed first deploy, then a timed redeploy of a new release
 * (current exists, so the previous release is recorded and the switch replaces a link). Every tool runs it
 * on the same fleet, one after the other.
 */
export const redeploy: Scenario = {
  name: 'redeploy',
  description:
    'first deploy (untimed), then a timed redeploy of a new release; end state checked on every host',
  byDefault: true,
  defaultSizes: [10, 100],
  async run(ctx) {
    const measurements: Measurement[] = [];
    for (const tool of ctx.tools) {
      const timedOutAt = ctx.timedOut.get(tool.label);
      if (timedOutAt !== undefined && ctx.n >= timedOutAt) {
        measurements.push({
          ...measurement(ctx, tool, 'redeploy'),
          failure: `skipped: timed out at N=${timedOutAt}`,
        });
        continue;
      }
      ctx.resetHosts();
      const base = slug(tool.label); // the log's name adds N
      ctx.log(`${tool.label}: warm-up deploy to ${ctx.n} hosts`);
      const warm = await deployAndVerify(ctx, tool, `${base}-1`, undefined);
      if (warm.failure) {
        if (warm.figures.timedOut) noteTimeout(ctx, tool.label);
        measurements.push({
          ...measurement(ctx, tool, 'redeploy'),
          failure: `warm-up deploy: ${warm.failure}`,
        });
        continue;
      }
      ctx.log(`${tool.label}: timed redeploy`);
      const timed = await deployAndVerify(ctx, tool, `${base}-2`, warm.prepared);
      if (timed.figures.timedOut) noteTimeout(ctx, tool.label);
      measurements.push(measurement(ctx, tool, 'redeploy', timed));
    }
    return { measurements, timings: [], notes: [] };
  },
};
