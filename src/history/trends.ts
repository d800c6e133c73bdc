import type { DeployRecord } from './kpi';

/**
 * The KPIs of kpi.ts over time: per stage and per hour, day or week, how many deploys succeeded, how long the
 * successful ones took, and how long the incidents that ended in that period took to recover. Incidents follow
 * computeKpis' rule: one opens at the first failed (or rolled-back) deploy after a success or at the start of the
 * history, failures in a row extend it, and the next successful deploy of the stage closes it.
 */

export type Bucket = 'hour' | 'day' | 'week';

export interface Incident {
  stage: string;
  openedAt: string;
  /** The successful deploy that ended it; absent while it is still open. */
  closedAt?: string;
  recoveryMs?: number;
}

export interface TrendPoint {
  stage: string;
  /** Start of the period (UTC; weeks start on Monday). */
  start: string;
  deploys: number;
  succeeded: number;
  successRate: number;
  avgDeployMs?: number;
  /** Incidents that ended in this period and their mean time to recover. */
  recoveries: number;
  mttrMs?: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Periods a chart shows at most before the next larger period is used. */
const MAX_BUCKETS = 120;

const t = (iso: string) => Date.parse(iso);
const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);

function byStage(records: DeployRecord[]): Map<string, DeployRecord[]> {
  const m = new Map<string, DeployRecord[]>();
  for (const r of records) if (!Number.isNaN(t(r.time))) m.set(r.stage, [...(m.get(r.stage) ?? []), r]);
  for (const rs of m.values()) rs.sort((a, b) => t(a.time) - t(b.time));
  return new Map([...m].sort(([a], [b]) => a.localeCompare(b)));
}

export function incidents(records: DeployRecord[]): Incident[] {
  const out: Incident[] = [];
  for (const [stage, rs] of byStage(records)) {
    let open: Incident | undefined;
    for (const r of rs) {
      if (r.outcome === 'success') {
        if (open) {
          open.closedAt = r.time;
          open.recoveryMs = t(r.time) - t(open.openedAt);
          out.push(open);
        }
        open = undefined;
      } else if (!open) open = { stage, openedAt: r.failedAt ?? r.time };
    }
    if (open) out.push(open);
  }
  return out;
}

export function bucketStart(time: number, bucket: Bucket): number {
  if (bucket === 'hour') return Math.floor(time / HOUR) * HOUR;
  const day = Math.floor(time / DAY) * DAY;
  if (bucket === 'day') return day;
  const weekday = (new Date(day).getUTCDay() + 6) % 7; // Monday = 0
  return day - weekday * DAY;
}

const SIZE: Record<Bucket, number> = { hour: HOUR, day: DAY, week: 7 * DAY };

/** The smallest period that keeps the history within MAX_BUCKETS periods. */
export function chooseBucket(records: DeployRecord[]): Bucket {
  const times = records.map((r) => t(r.time)).filter((x) => !Number.isNaN(x));
  if (!times.length) return 'day';
  const span = Math.max(...times) - Math.min(...times);
  return (['hour', 'day'] as const).find((b) => span / SIZE[b] < MAX_BUCKETS) ?? 'week';
}

export function trends(
  records: DeployRecord[],
  bucket: Bucket | 'auto' = 'auto',
): { bucket: Bucket; points: TrendPoint[] } {
  const size = bucket === 'auto' ? chooseBucket(records) : bucket;
  const recovered = incidents(records).filter((i) => i.closedAt !== undefined);
  const points: TrendPoint[] = [];
  for (const [stage, rs] of byStage(records)) {
    const periods = new Map<number, { deploys: DeployRecord[]; recoveries: number[] }>();
    const at = (time: number) => {
      const k = bucketStart(time, size);
      if (!periods.has(k)) periods.set(k, { deploys: [], recoveries: [] });
      return periods.get(k)!;
    };
    for (const r of rs) at(t(r.time)).deploys.push(r);
    for (const i of recovered.filter((x) => x.stage === stage))
      at(t(i.closedAt!)).recoveries.push(i.recoveryMs!);
    for (const [k, p] of [...periods].sort(([a], [b]) => a - b)) {
      const ok = p.deploys.filter((r) => r.outcome === 'success');
      points.push({
        stage,
        start: new Date(k).toISOString(),
        deploys: p.deploys.length,
        succeeded: ok.length,
        successRate: p.deploys.length ? ok.length / p.deploys.length : 0,
        avgDeployMs: avg(ok.flatMap((r) => (r.durationMs === undefined ? [] : [r.durationMs]))),
        recoveries: p.recoveries.length,
        mttrMs: avg(p.recoveries),
      });
    }
  }
  return { bucket: size, points };
}
