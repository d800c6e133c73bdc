import { timedRedeploy } from './deploy-run';
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
    for (const tool of ctx.tools) measurements.push(await timedRedeploy(ctx, tool, 'redeploy'));
    return { measurements, timings: [], notes: [] };
  },
};
