/** One deploy of one environment (stage): what the KPIs are computed from. */
export interface DeployRecord {
  time: string; // when it finished (ISO)
  environment: string;
  release: string;
  host?: string;
  runId?: string;
  outcome: 'success' | 'failed' | 'rolled_back';
  failedAt?: string; // when it failed (before its rollback finished); opens an incident
  durationMs?: number;
  rollbackMs?: number;
}

export interface Kpi {
  environment: string;
  deploys: number;
  succeeded: number;
  successRate: number;
  avgDeployMs?: number;
  avgRollbackMs?: number;
  mttrMs?: number; // mean time from a failed deploy to the next successful one
  incidents: number; // failures followed by a recovery
  openIncidentSince?: string; // a failure with no successful deploy after it yet
  lastDeploy?: string;
}

const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);

/**
 * KPIs per environment. An incident starts at the first failed deploy after a success (or at the start) and ends
 * at the next successful deploy; MTTR averages the closed incidents, and an open one is reported on its own.
 */
export function computeKpis(records: DeployRecord[]): Kpi[] {
  const byEnv = new Map<string, DeployRecord[]>();
  for (const r of records) byEnv.set(r.environment, [...(byEnv.get(r.environment) ?? []), r]);
  return [...byEnv.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([environment, rs]) => {
      const sorted = [...rs].sort((a, b) => a.time.localeCompare(b.time));
      const ok = sorted.filter((r) => r.outcome === 'success');
      const recoveries: number[] = [];
      let openSince: string | undefined;
      for (const r of sorted) {
        if (r.outcome === 'success') {
          if (openSince) recoveries.push(Date.parse(r.time) - Date.parse(openSince));
          openSince = undefined;
        } else if (!openSince) openSince = r.failedAt ?? r.time;
      }
      return {
        environment,
        deploys: sorted.length,
        succeeded: ok.length,
        successRate: sorted.length ? ok.length / sorted.length : 0,
        avgDeployMs: avg(ok.flatMap((r) => (r.durationMs === undefined ? [] : [r.durationMs]))),
        avgRollbackMs: avg(sorted.flatMap((r) => (r.rollbackMs === undefined ? [] : [r.rollbackMs]))),
        mttrMs: avg(recoveries),
        incidents: recoveries.length,
        openIncidentSince: openSince,
        lastDeploy: sorted[sorted.length - 1]?.time,
      };
    });
}
