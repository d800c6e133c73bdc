/**
 * One deploy of one stage by one run, over all the stage's hosts: what the KPIs are computed from. "Stage" is the
 * config's stage (staging, production...); the metrics' `environment` label is the deployment as a whole.
 */
export interface DeployRecord {
  time: string; // when it finished (ISO)
  stage: string;
  release: string;
  hosts: string[];
  token?: string; // the run that made it
  runId?: string;
  outcome: 'success' | 'failed' | 'rolled_back';
  failedAt?: string; // when it failed (before its rollback finished); opens an incident
  durationMs?: number; // successful deploys: the slowest host's deploy time
  rollbackMs?: number; // the slowest host's rollback time
}

export interface Kpi {
  stage: string;
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
 * KPIs per stage. An incident starts when a deploy fails (or is rolled back) after a success, or at the start
 * of the history, and ends at the next successful deploy of the same stage; MTTR averages the closed incidents,
 * and an open one is reported on its own. Failures in a row extend one incident, they do not open new ones.
 */
export function computeKpis(records: DeployRecord[]): Kpi[] {
  const byStage = new Map<string, DeployRecord[]>();
  for (const r of records) byStage.set(r.stage, [...(byStage.get(r.stage) ?? []), r]);
  return [...byStage.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([stage, rs]) => {
      // By time, not by text: reports write `...42Z` and release logs `...42.000Z`.
      const sorted = [...rs].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
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
        stage,
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
