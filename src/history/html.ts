import { esc, fmtDuration, fmtTime, htmlPage, pct } from '../report/html-kit';
import type { DeployRecord, Kpi } from './kpi';
import { trends, type Bucket, type TrendPoint } from './trends';

/**
 * The deploy history as one self-contained page: the KPIs per stage, charts of success rate, deploy time and
 * MTTR over time (inline SVG, one line per stage), the same numbers as a table, and the recent deploys.
 */

/** Line colours per stage, readable on the light and the dark background alike. */
const PALETTE = ['#3b82f6', '#f97316', '#22a06b', '#a855f7', '#e11d48', '#0ea5b7', '#ca8a04', '#64748b'];
const RECENT = 50;

const d = (ms?: number) => (ms === undefined ? '—' : fmtDuration(ms));
const OUTCOME_PILL: Record<DeployRecord['outcome'], string> = {
  success: 'ok',
  failed: 'failed',
  rolled_back: 'rb',
};

interface Series {
  name: string;
  color: string;
  points: { t: number; v: number; label: string }[];
}

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** Upper bounds for a duration axis whose quarters are round too (1m: 15s steps, 4h: 1h, 1d: 6h). */
const DURATION_MAXIMA = [
  ...[1, 2, 4, 8, 20, 40].map((x) => x * SEC),
  ...[1, 2, 4, 8, 20, 40].map((x) => x * MIN),
  ...[1, 2, 4, 8, 12].map((x) => x * HOUR),
  ...[1, 2, 4, 8, 20, 40, 80, 200, 400].map((x) => x * DAY),
];

const niceDurationMax = (v: number) => DURATION_MAXIMA.find((m) => m >= v) ?? v;

function periodLabel(iso: string, bucket: Bucket): string {
  const s = new Date(iso).toISOString();
  return bucket === 'hour'
    ? `${s.slice(0, 10)} ${s.slice(11, 13)}h`
    : bucket === 'week'
      ? `week of ${s.slice(0, 10)}`
      : s.slice(0, 10);
}

function lineChart(o: {
  id: string;
  title: string;
  series: Series[];
  fixedMax?: number;
  yLabel: (v: number) => string;
  bucket: Bucket;
}): string {
  const W = 720;
  const H = 220;
  const L = 64;
  const R = 14;
  const T = 14;
  const B = 34;
  const all = o.series.flatMap((s) => s.points);
  if (!all.length)
    return `<figure class="chart" id="${esc(o.id)}"><figcaption>${esc(o.title)}</figcaption><p class="muted">No data yet.</p></figure>`;
  const tMin = Math.min(...all.map((p) => p.t));
  const tMax = Math.max(...all.map((p) => p.t));
  const yMax = o.fixedMax ?? niceDurationMax(Math.max(...all.map((p) => p.v)));
  const x = (v: number) =>
    tMax === tMin ? L + (W - L - R) / 2 : L + ((v - tMin) / (tMax - tMin)) * (W - L - R);
  const y = (v: number) => T + (1 - v / yMax) * (H - T - B);
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const v = yMax * f;
      return `<line class="grid" x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/><text class="axis" x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${esc(o.yLabel(v))}</text>`;
    })
    .join('');
  const times = [...new Set(all.map((p) => p.t))].sort((a, b) => a - b);
  const every = Math.max(1, Math.ceil(times.length / 6));
  const xTicks = times
    .filter((_, i) => i % every === 0 || i === times.length - 1)
    .map((tv, i, shown) => {
      // The first and last labels grow inwards, so they stay inside the chart.
      const anchor =
        shown.length < 2 ? 'middle' : i === 0 ? 'start' : i === shown.length - 1 ? 'end' : 'middle';
      return `<text class="axis" x="${x(tv).toFixed(1)}" y="${H - B + 16}" text-anchor="${anchor}">${esc(periodLabel(new Date(tv).toISOString(), o.bucket).replace('week of ', ''))}</text>`;
    })
    .join('');
  const lines = o.series
    .map((s) => {
      const pts = s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
      const dots = s.points
        .map(
          (p) =>
            `<circle cx="${x(p.t).toFixed(1)}" cy="${y(p.v).toFixed(1)}" r="3.5" fill="${s.color}"><title>${esc(p.label)}</title></circle>`,
        )
        .join('');
      return `<g class="series" data-stage="${esc(s.name)}" data-points="${s.points.length}">${s.points.length > 1 ? `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts}"/>` : ''}${dots}</g>`;
    })
    .join('');
  const legend = o.series
    .map((s) => `<span><i style="background:${s.color}"></i>${esc(s.name)}</span>`)
    .join('');
  return `<figure class="chart" id="${esc(o.id)}"><figcaption>${esc(o.title)}</figcaption><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}"><line class="axisline" x1="${L}" x2="${L}" y1="${T}" y2="${H - B}"/><line class="axisline" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/>${grid}${xTicks}${lines}</svg><div class="legend">${legend}</div></figure>`;
}

function seriesOf(
  stages: string[],
  points: TrendPoint[],
  value: (p: TrendPoint) => number | undefined,
  label: (p: TrendPoint) => string,
  bucket: Bucket,
): Series[] {
  return stages.map((stage, i) => ({
    name: stage,
    color: PALETTE[i % PALETTE.length],
    points: points
      .filter((p) => p.stage === stage && value(p) !== undefined)
      .map((p) => ({
        t: Date.parse(p.start),
        v: value(p)!,
        label: `${stage}, ${periodLabel(p.start, bucket)}: ${label(p)}`,
      })),
  }));
}

function kpiTable(kpis: Kpi[]): string {
  const rows = kpis
    .map(
      (k) =>
        `<tr data-stage="${esc(k.stage)}"><td><b>${esc(k.stage)}</b></td><td class="num">${k.deploys}</td><td class="num">${k.succeeded}</td><td class="num" data-kpi="success-rate">${esc(pct(k.successRate))}</td><td class="num" data-kpi="avg-deploy">${d(k.avgDeployMs)}</td><td class="num">${d(k.avgRollbackMs)}</td><td class="num" data-kpi="mttr">${d(k.mttrMs)}</td><td class="num">${k.incidents}</td><td>${k.openIncidentSince ? `<span class="pill failed">open since ${esc(fmtTime(k.openIncidentSince))}</span>` : '—'}</td><td>${esc(fmtTime(k.lastDeploy))}</td></tr>`,
    )
    .join('');
  return `<table id="kpis"><thead><tr><th>stage</th><th class="num">deploys</th><th class="num">succeeded</th><th class="num">success rate</th><th class="num">avg deploy</th><th class="num">avg rollback</th><th class="num">MTTR</th><th class="num">incidents</th><th>open incident</th><th>last deploy</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function trendTable(points: TrendPoint[], bucket: Bucket): string {
  const rows = points
    .map(
      (p) =>
        `<tr data-stage="${esc(p.stage)}" data-start="${esc(p.start)}"><td>${esc(p.stage)}</td><td>${esc(periodLabel(p.start, bucket))}</td><td class="num">${p.deploys}</td><td class="num">${p.succeeded}</td><td class="num">${esc(pct(p.successRate))}</td><td class="num">${d(p.avgDeployMs)}</td><td class="num">${p.recoveries || ''}</td><td class="num">${d(p.mttrMs)}</td></tr>`,
    )
    .join('');
  return `<details id="trend-table"><summary>The numbers behind the charts (${points.length} row(s), per ${bucket})</summary><table><thead><tr><th>stage</th><th>${bucket}</th><th class="num">deploys</th><th class="num">succeeded</th><th class="num">success rate</th><th class="num">avg deploy</th><th class="num">recovered</th><th class="num">MTTR</th></tr></thead><tbody>${rows}</tbody></table></details>`;
}

function recentTable(records: DeployRecord[]): string {
  const recent = [...records].sort((a, b) => Date.parse(b.time) - Date.parse(a.time)).slice(0, RECENT);
  const rows = recent
    .map((r) => {
      const hosts =
        r.hosts.length > 3 ? `${r.hosts.slice(0, 3).join(', ')} +${r.hosts.length - 3}` : r.hosts.join(', ');
      return `<tr data-stage="${esc(r.stage)}" data-outcome="${r.outcome}"><td class="mono">${esc(fmtTime(r.time))}</td><td>${esc(r.stage)}</td><td><code>${esc(r.release)}</code></td><td><span class="pill ${OUTCOME_PILL[r.outcome] ?? 'failed'}">${esc(r.outcome.replace('_', ' '))}</span></td><td class="num">${d(r.durationMs)}</td><td class="num">${d(r.rollbackMs)}</td><td class="mono">${esc(hosts)}</td><td>${esc(r.runId ?? '')}</td></tr>`;
    })
    .join('');
  return `<table id="recent"><thead><tr><th>finished</th><th>stage</th><th>release</th><th>outcome</th><th class="num">deploy time</th><th class="num">rollback</th><th>targets</th><th>run</th></tr></thead><tbody>${rows}</tbody></table>${records.length > RECENT ? `<p class="muted">The last ${RECENT} of ${records.length} deploys.</p>` : ''}`;
}

const CSS = `
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 16px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; background: var(--panel); }
figure.chart figcaption { font-weight: 600; margin-bottom: 4px; }
figure.chart svg { width: 100%; height: auto; display: block; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axisline { stroke: var(--muted); stroke-width: 1; }
svg .axis { fill: var(--muted); font-size: 11px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: var(--muted); margin-top: 4px; }
.legend i { display: inline-block; width: 14px; height: 4px; border-radius: 2px; margin-right: 5px; vertical-align: 3px; }
`;

/** The HTML page of the deploy history. `generatedAt` is for the footer (the CLI passes the current time). */
export function renderHistoryHtml(
  records: DeployRecord[],
  kpis: Kpi[],
  opts: { project?: string; generatedAt?: string; bucket?: Bucket } = {},
): string {
  const { bucket, points } = trends(records, opts.bucket ?? 'auto');
  const stages = [...new Set([...kpis.map((k) => k.stage), ...points.map((p) => p.stage)])];
  const charts = [
    lineChart({
      id: 'chart-success',
      title: `Success rate per ${bucket}`,
      series: seriesOf(
        stages,
        points,
        (p) => p.successRate,
        (p) => `${pct(p.successRate)} of ${p.deploys}`,
        bucket,
      ),
      fixedMax: 1,
      yLabel: (v) => pct(v),
      bucket,
    }),
    lineChart({
      id: 'chart-deploy-time',
      title: `Average deploy time per ${bucket} (successful deploys)`,
      series: seriesOf(
        stages,
        points,
        (p) => p.avgDeployMs,
        (p) => d(p.avgDeployMs),
        bucket,
      ),
      yLabel: (v) => fmtDuration(v),
      bucket,
    }),
    lineChart({
      id: 'chart-mttr',
      title: `Mean time to recover, by the ${bucket} of recovery`,
      series: seriesOf(
        stages,
        points,
        (p) => p.mttrMs,
        (p) => `${d(p.mttrMs)} over ${p.recoveries} incident(s)`,
        bucket,
      ),
      yLabel: (v) => fmtDuration(v),
      bucket,
    }),
  ].join('');
  const open = kpis.filter((k) => k.openIncidentSince);
  const times = records.map((r) => Date.parse(r.time)).filter((t) => !Number.isNaN(t));
  const span = times.length
    ? `${fmtTime(new Date(Math.min(...times)).toISOString())} – ${fmtTime(new Date(Math.max(...times)).toISOString())}`
    : 'no deploys recorded';
  const body = `<header><h1>homelab-deploy · deploy history${opts.project ? ` · ${esc(opts.project)}` : ''}</h1>
<p class="meta"><span>deploys: <b>${records.length}</b></span><span>stages: <b>${kpis.length}</b></span><span>period: <b>${esc(span)}</b></span></p>
${open.length ? `<section class="banner bad" id="open-incidents"><b>Open incident${open.length > 1 ? 's' : ''}:</b> ${open.map((k) => `${esc(k.stage)} failing since ${esc(fmtTime(k.openIncidentSince))}`).join('; ')}</section>` : ''}
</header>
<section id="kpi"><h2>Per stage</h2>${kpiTable(kpis)}</section>
<section id="trends"><h2>Over time</h2><div class="charts">${charts}</div>${trendTable(points, bucket)}</section>
<section id="recent-deploys"><h2>Recent deploys</h2>${recentTable(records)}</section>
<footer class="muted"><p>homelab-deploy history${opts.generatedAt ? ` · generated ${esc(fmtTime(opts.generatedAt))}` : ''}</p></footer>`;
  return htmlPage({ title: `Deploy history${opts.project ? ` — ${opts.project}` : ''}`, body, css: CSS });
}
