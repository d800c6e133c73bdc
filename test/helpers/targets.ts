import type { Config, HostConfig } from '../../src/config/types';
import { makeContext, type RunContext } from '../../src/run/context';
import { createTargets, type TargetSet, type TargetSetOptions } from '../../src/targets';
import type { PreflightOutcome } from '../../src/targets/target';

/** A run context with its targets, for tests that drive single target operations outside a full run. */
export interface TestContext extends RunContext {
  targets: TargetSet;
}

export function testContext(
  config: Config,
  opts: Parameters<typeof makeContext>[1] & TargetSetOptions,
): TestContext {
  const ctx = makeContext(config, opts);
  return Object.assign(ctx, { targets: createTargets(ctx, opts) });
}

export const preflight = (c: TestContext, host: HostConfig, phase: string): Promise<PreflightOutcome> =>
  c.targets.get(host.name).preflight(phase);

export const releaseLock = (c: TestContext, host: HostConfig): Promise<boolean> =>
  c.targets.get(host.name).releaseLock();
