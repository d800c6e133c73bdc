import type { HomelabConfig } from '../tools/homelab-config';
import type { DeployTool } from '../tools/tool';
import type { ScenarioContext } from './types';

/**
 * defaults.parallel (= the stage's parallel) of the fleet scenarios when --parallel does not choose. Measured
 * at 500 hosts (bench/README.md, "Fleet concurrency"): 100 gets nearly all of what widening buys (200 adds
 * under a second) for a few MB more than 10; the product's own default (10) is one `--parallel default` away.
 */
export const FLEET_PARALLEL = 100;

/** The rollout every fleet scenario deploys with: a canary, then 10 %, 50 % and the rest, 5 % budget. */
export const FLEET_ROLLOUT = { waves: [1, '10%', '50%', '100%'], max_fail_percentage: 5 };

/**
 * The fleet's health check: current points at the release being checked. The redeploy's check (REVISION holds
 * this release's name) would fail a rollback by design, because the product checks the older release after
 * switching back and the config names only the newer one; `{{release.id}}` is whichever release is checked.
 * It costs the same one process per check on the host (the command substitution's readlink).
 */
export const RELEASE_ID_CHECK = {
  name: 'release',
  command: 'test "$(readlink {{host.path}}/current)" = releases/{{release.id}}',
  expect: { exit_code: 0 },
};

export function withFleetRollout(config: HomelabConfig): void {
  for (const stage of config.stages) {
    stage.rollout = FLEET_ROLLOUT;
    stage.health = [RELEASE_ID_CHECK];
  }
}

/** The concurrency variants a fleet scenario runs: those --parallel names, else FLEET_PARALLEL alone. */
export function fleetParallels(ctx: ScenarioContext): (number | undefined)[] {
  return ctx.options.parallelGiven ? ctx.options.parallel : [FLEET_PARALLEL];
}

/**
 * The tools of a fleet scenario over SSH: the ssh2 baseline (unless --only homelab), then homelab-deploy per
 * concurrency with the fleet rollout in its stage, `--yes` (a fleet is past the checkpoint) and a report file.
 */
export function fleetTools(ctx: ScenarioContext): DeployTool[] {
  const tools: DeployTool[] = ctx.baseline ? [ctx.baseline] : [];
  if (ctx.options.only !== 'baseline')
    for (const parallel of fleetParallels(ctx))
      tools.push(
        ctx.homelab({ parallel, customize: withFleetRollout, extraArgs: ['--yes'], reportFile: true }),
      );
  return tools;
}

/** Whether a tool timed out at a smaller N of this invocation, so this N skips it. */
export function skippedForTimeout(ctx: ScenarioContext, tool: DeployTool): string | undefined {
  const at = ctx.timedOut.get(tool.label);
  return at !== undefined && ctx.n >= at ? `skipped: timed out at N=${at}` : undefined;
}
