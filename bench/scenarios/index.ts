import { redeploy } from './redeploy';
import type { Scenario } from './types';

/**
 * The benchmark's scenarios, run in this order for every N. To add one, write a Scenario (see redeploy.ts:
 * it gets a fleet and the tools, returns rows, timings and notes) and list it here; `byDefault: false` keeps
 * it out of a plain `npm run bench` until `--scenario NAME` asks for it, and `appliesTo` limits it to the
 * fleet sizes it is meant for (a rollout in waves, say, from 100 hosts up; a fleet rollback at 1500, where
 * `ctx.homelab({ customize, extraArgs })` gives a homelab-deploy run with a rollout in its stage and
 * `--report-file`, and the report's per-wave durations become Timings).
 */
export const SCENARIOS: Scenario[] = [redeploy];
