import type { HealthCheck, HostConfig } from '../config/types';
import { DeployError } from '../errors';
import { runHealthChecks } from '../health/run';
import type { HealthReport } from '../report/types';
import type { RunContext } from '../run/context';

/** A host's checks failed; the reports travel with the error so the phase can still show every check. */
export class HealthFailed extends DeployError {
  constructor(
    host: string,
    readonly health: HealthReport[],
  ) {
    const bad = health.filter((x) => !x.ok);
    super('health-failed', `${host}: ${bad.map((b) => `${b.check}: ${b.lastError}`).join('; ')}`, { host });
  }
}

/**
 * Runs a host's checks for a phase, announces each result, and throws HealthFailed when any failed. Errors
 * reaching the checks themselves (a lost connection) are thrown as they are, with their own class.
 */
export async function requireHealthy(
  ctx: RunContext,
  host: HostConfig,
  checks: HealthCheck[],
  stage: string,
  phase: string,
): Promise<HealthReport[]> {
  const health = await runHealthChecks(ctx, host, checks, stage);
  for (const x of health) ctx.emit({ type: 'host-health', phase, host: host.name, health: x });
  if (health.some((x) => !x.ok)) throw new HealthFailed(host.name, health);
  return health;
}
