import type { DeployStatus, PhaseReport, Report } from './types';

/**
 * Combines the reports of the shards of one bulk deploy. Hosts and audit records are concatenated, phases with
 * the same name are joined, and the status says how the fleet as a whole ended: success only if every shard
 * succeeded; failed/rolled_back/aborted if no host ended on the new release; partial_success otherwise.
 */
export function mergeReports(reports: Report[]): Report {
  if (reports.length === 0) throw new Error('no reports to merge');
  const phases = new Map<string, PhaseReport>();
  for (const r of reports) {
    for (const p of r.phases) {
      const m = phases.get(p.name);
      if (!m) {
        phases.set(p.name, { ...p, hosts: [...p.hosts] });
        continue;
      }
      m.hosts.push(...p.hosts);
      m.durationMs = Math.max(m.durationMs, p.durationMs);
      if (p.status !== 'ok' && m.status === 'ok') {
        m.status = p.status;
        m.error = p.error;
      }
    }
  }
  const statuses = reports.map((r) => r.status);
  const deployed = reports.flatMap((r) => r.systemsDeployed);
  const worst = (['rolled_back', 'failed', 'aborted'] as DeployStatus[]).find((s) => statuses.includes(s));
  let status: DeployStatus;
  if (statuses.every((s) => s === 'success')) status = 'success';
  else if (deployed.length === 0) status = worst ?? 'failed';
  else status = 'partial_success';
  const failing = reports.filter((r) => r.status !== 'success');
  const first = reports[0];
  return {
    ...first,
    status,
    phase: failing[0]?.phase ?? first.phase,
    systemsDeployed: deployed,
    durationSeconds: Math.max(...reports.map((r) => r.durationSeconds)),
    startedAt: reports.map((r) => r.startedAt).sort()[0],
    finishedAt: reports
      .map((r) => r.finishedAt)
      .sort()
      .slice(-1)[0],
    error: failing[0]?.error
      ? {
          ...failing[0].error,
          message: `${failing.length} of ${reports.length} shards did not succeed; first: ${failing[0].error.message}`,
        }
      : undefined,
    rollbackFailed: reports.some((r) => r.rollbackFailed) || undefined,
    phases: [...phases.values()],
    hosts: reports.flatMap((r) => r.hosts),
    audit: reports.flatMap((r) => r.audit ?? []),
  };
}
