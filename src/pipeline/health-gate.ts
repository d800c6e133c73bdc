import type { HealthCheck } from '../config/types';
import { DeployError } from '../errors';
import { runHealthChecks } from '../health/run';
import type { HealthSubject } from '../health/subject';
import type { HealthReport } from '../report/types';
import type { RunContext } from '../run/context';

/** A target's checks failed; the reports travel with the error so the phase can still show every check. */
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
 * Runs a target's checks for a phase, announces each result, and throws HealthFailed when any failed. Errors
 * reaching the checks themselves (a lost connection) are thrown as they are, with their own class.
 */
export async function requireHealthy(
  ctx: RunContext,
  subject: HealthSubject,
  checks: HealthCheck[],
  phase: string,
): Promise<HealthReport[]> {
  const health = await runHealthChecks(ctx, subject, checks);
  for (const x of health) ctx.emit({ type: 'host-health', phase, host: subject.name, health: x });
  if (health.some((x) => !x.ok)) throw new HealthFailed(subject.name, health);
  return health;
}
