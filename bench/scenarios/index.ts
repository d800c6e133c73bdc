import { fleetRollback } from './fleet-rollback';
import { fleetRollout } from './fleet-rollout';
import { propertyCost } from './property-cost';
import { redeploy } from './redeploy';
import type { Scenario } from './types';
import { vercelFleet } from './vercel-fleet';

/**
 * The benchmark's scenarios, run in this order for every N. To add one, write a Scenario (see redeploy.ts:
 * it gets a fleet and the tools, returns rows, timings, counts and notes) and list it here; `byDefault: false`
 * keeps it out of a plain `npm run bench` until `--scenario NAME` asks for it, `defaultSizes` are the fleet
 * sizes it runs at when the command line names none, `appliesTo` limits it to the sizes it is meant for, and
 * `usesFleet: false` says it needs no sshd fleet. fleet-rollback comes right after fleet-rollout so it can
 * roll back what the rollout left on the hosts instead of deploying the fleet twice more.
 */
export const SCENARIOS: Scenario[] = [redeploy, fleetRollout, fleetRollback, vercelFleet, propertyCost];

/** The fleet sizes of an invocation: those named on the command line, else every chosen scenario's own. */
export function sizesToRun(scenarios: Scenario[], named: number[]): number[] {
  if (named.length) return named;
  return [...new Set(scenarios.flatMap((s) => s.defaultSizes))].sort((a, b) => a - b);
}

/**
 * The scenarios that run at N: with sizes named on the command line every chosen scenario runs at each of them,
 * else a scenario runs only at its own default sizes; `appliesTo` has the last word.
 */
export function scenariosAt(scenarios: Scenario[], n: number, sizesNamed: boolean): Scenario[] {
  return scenarios.filter(
    (s) => (sizesNamed || s.defaultSizes.includes(n)) && (!s.appliesTo || s.appliesTo(n)),
  );
}
