import { recordsFromReport } from '../history/records';
import type { DeployRecord } from '../history/kpi';
import type { DeployStatus, Report } from '../report/types';
import type { Family, Labels, ParsedSample } from './exposition';

/**
 * Counters that carry over from run to run, from which Prometheus derives the KPIs over any time range:
 * success rate = increase(deploys_total{outcome="success"}) / increase(deploys_total), average deploy and
 * rollback time = increase(..._seconds_total) / increase(count), MTTR = increase(recovery_seconds_total) /
 * increase(recoveries_total). A Pushgateway PUT replaces its group and a textfile is rewritten whole, so each run
 * reads the previous values back, adds its own and writes them again (read-modify-write). Deploys to one
 * environment are serialised by the host locks, so two runs do not race on the same counters; if the previous
 * values cannot be read the counters restart from this run, which Prometheus treats as a counter reset.
 */

export const RUN_STATUSES: DeployStatus[] = [
  'success',
  'partial_success',
  'failed',
  'aborted',
  'rolled_back',
];
export const OUTCOMES: DeployRecord['outcome'][] = ['success', 'failed', 'rolled_back'];

export const TOTALS = {
  runs: 'homelab_deploy_runs_total',
  deploys: 'homelab_deploy_stage_deploys_total',
  deploySeconds: 'homelab_deploy_stage_deploy_seconds_total',
  rollbacks: 'homelab_deploy_stage_rollbacks_total',
  rollbackSeconds: 'homelab_deploy_stage_rollback_seconds_total',
  recoveries: 'homelab_deploy_stage_recoveries_total',
  recoverySeconds: 'homelab_deploy_stage_recovery_seconds_total',
  openSince: 'homelab_deploy_stage_incident_open_since_timestamp_seconds',
} as const;

export interface StageTotals {
  deploys: Record<DeployRecord['outcome'], number>;
  deploySeconds: number; // successful deploys only
  rollbacks: number;
  rollbackSeconds: number;
  recoveries: number;
  recoverySeconds: number;
  openSince?: number; // unix seconds: a failed deploy with no successful one after it yet
}

export interface Totals {
  runs: Record<DeployStatus, number>;
  stages: Map<string, StageTotals>;
}

const zeroStage = (): StageTotals => ({
  deploys: { success: 0, failed: 0, rolled_back: 0 },
  deploySeconds: 0,
  rollbacks: 0,
  rollbackSeconds: 0,
  recoveries: 0,
  recoverySeconds: 0,
});

const finite = (v: number) => (Number.isFinite(v) && v >= 0 ? v : 0);

/** The totals of one project and environment among samples read back (extra labels such as job are ignored). */
export function totalsFromSamples(samples: ParsedSample[], base: Labels): Totals {
  const t: Totals = {
    runs: Object.fromEntries(RUN_STATUSES.map((s) => [s, 0])) as Totals['runs'],
    stages: new Map(),
  };
  const stage = (name: string) => {
    let s = t.stages.get(name);
    if (!s) t.stages.set(name, (s = zeroStage()));
    return s;
  };
  for (const s of samples) {
    if (!Object.entries(base).every(([k, v]) => s.labels[k] === v)) continue;
    const v = finite(s.value);
    const st = s.labels.stage;
    switch (s.name) {
      case TOTALS.runs:
        if (RUN_STATUSES.includes(s.labels.status as DeployStatus))
          t.runs[s.labels.status as DeployStatus] = v;
        break;
      case TOTALS.deploys:
        if (st !== undefined && OUTCOMES.includes(s.labels.outcome as DeployRecord['outcome']))
          stage(st).deploys[s.labels.outcome as DeployRecord['outcome']] = v;
        break;
      case TOTALS.openSince:
        if (st !== undefined && v > 0) stage(st).openSince = v;
        break;
      default: {
        const key = (Object.keys(TOTALS) as (keyof typeof TOTALS)[]).find((k) => TOTALS[k] === s.name);
        if (st !== undefined && key && key !== 'runs' && key !== 'deploys' && key !== 'openSince')
          stage(st)[key] = v;
      }
    }
  }
  return t;
}

/** Adds one run: its status, and each stage's deploy outcome, durations and incident open/close. */
export function addReport(prev: Totals, r: Report): Totals {
  const t: Totals = {
    runs: { ...prev.runs },
    stages: new Map([...prev.stages].map(([k, v]) => [k, { ...v, deploys: { ...v.deploys } }])),
  };
  // A dry run changes nothing on the hosts, so it is no deploy; its counters are carried forward unchanged.
  if (r.dryRun) return t;
  t.runs[r.status]++;
  const records = recordsFromReport(r).sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  for (const rec of records) {
    let s = t.stages.get(rec.stage);
    if (!s) t.stages.set(rec.stage, (s = zeroStage()));
    s.deploys[rec.outcome]++;
    if (rec.rollbackMs !== undefined) {
      s.rollbacks++;
      s.rollbackSeconds += rec.rollbackMs / 1000;
    }
    if (rec.outcome === 'success') {
      s.deploySeconds += (rec.durationMs ?? 0) / 1000;
      if (s.openSince !== undefined) {
        s.recoveries++;
        s.recoverySeconds += Math.max(0, Date.parse(rec.time) / 1000 - s.openSince);
        s.openSince = undefined;
      }
    } else if (s.openSince === undefined) {
      s.openSince = Date.parse(rec.failedAt ?? rec.time) / 1000;
    }
  }
  return t;
}

/** Every status and outcome is written, zeros included, so each series exists before its first increase. */
export function totalsFamilies(t: Totals, base: Labels): Family[] {
  const stages = [...t.stages].sort(([a], [b]) => a.localeCompare(b));
  const perStage = (
    name: string,
    help: string,
    pick: (s: StageTotals) => number | undefined,
    type: Family['type'] = 'counter',
  ): Family => ({
    name,
    help,
    type,
    samples: stages.flatMap(([stage, s]) => {
      const v = pick(s);
      return v === undefined ? [] : [{ labels: { ...base, stage }, value: round(v) }];
    }),
  });
  return [
    {
      name: TOTALS.runs,
      help: 'Runs by the status they ended in.',
      type: 'counter',
      samples: RUN_STATUSES.map((status) => ({ labels: { ...base, status }, value: t.runs[status] })),
    },
    {
      name: TOTALS.deploys,
      help: 'Deploys of each stage (one per run, over all its hosts) by outcome.',
      type: 'counter',
      samples: stages.flatMap(([stage, s]) =>
        OUTCOMES.map((outcome) => ({ labels: { ...base, stage, outcome }, value: s.deploys[outcome] })),
      ),
    },
    perStage(TOTALS.deploySeconds, 'Time spent in successful deploys of the stage.', (s) => s.deploySeconds),
    perStage(TOTALS.rollbacks, 'Rollbacks of the stage.', (s) => s.rollbacks),
    perStage(TOTALS.rollbackSeconds, 'Time spent rolling the stage back.', (s) => s.rollbackSeconds),
    perStage(
      TOTALS.recoveries,
      'Incidents closed: a successful deploy after failed ones.',
      (s) => s.recoveries,
    ),
    perStage(
      TOTALS.recoverySeconds,
      'Time from the first failed deploy of each closed incident to the next successful one.',
      (s) => s.recoverySeconds,
    ),
    perStage(
      TOTALS.openSince,
      'When the open incident of the stage began (absent when there is none).',
      (s) => s.openSince,
      'gauge',
    ),
  ];
}

// Sums of fractional seconds pick up float noise; milliseconds are precision enough.
const round = (v: number) => Math.round(v * 1000) / 1000;
