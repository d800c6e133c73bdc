import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Family } from '../../src/metrics/exposition';
import { kpiFamilies, reportFamilies } from '../../src/metrics/from-report';
import { addReport, totalsFamilies, totalsFromSamples } from '../../src/metrics/totals';
import type { Report } from '../../src/report/types';

const root = path.join(__dirname, '..', '..');

/** A run that exercises every metric: a lock wait, health checks with probe latency, a retry and a rollback. */
const RUN: Report = {
  schema: 1,
  project: 'homelab',
  status: 'partial_success',
  phase: 'public',
  systemsDeployed: ['pc'],
  durationSeconds: 40,
  startedAt: '2026-11-20T10:00:00Z',
  finishedAt: '2026-11-20T10:00:40Z',
  release: { id: 'abcdef012345', commit: 'abcdef0123456789abcdef0123456789abcdef01', ref: 'main' },
  run: {},
  phasesRequested: ['all'],
  audit: [],
  phases: [
    {
      name: 'preflight',
      kind: 'preflight',
      status: 'ok',
      startedAt: '2026-11-20T10:00:00Z',
      durationMs: 900,
      hosts: [
        {
          host: 'pc',
          ok: true,
          durationMs: 900,
          attempts: [],
          steps: [],
          health: [],
          detail: { lockWaitMs: 0 },
        },
      ],
    },
    {
      name: 'production',
      kind: 'stage',
      status: 'ok',
      startedAt: '2026-11-20T10:00:01Z',
      durationMs: 9000,
      hosts: [
        {
          host: 'pc',
          ok: true,
          durationMs: 9000,
          attempts: [{ attempt: 1, ok: true, durationMs: 9000 }],
          steps: [],
          health: [
            { check: 'app', ok: true, attempts: 2, durationMs: 1200, latency: { lastMs: 12, maxMs: 30 } },
          ] as unknown as Report['phases'][number]['hosts'][number]['health'],
        },
      ],
    },
    {
      name: 'public',
      kind: 'stage',
      status: 'failed',
      startedAt: '2026-11-20T10:00:10Z',
      durationMs: 30000,
      hosts: [
        {
          host: 'vps',
          ok: false,
          durationMs: 30000,
          attempts: [
            { attempt: 1, ok: false, durationMs: 10000 },
            { attempt: 2, ok: false, durationMs: 10000 },
          ],
          steps: [],
          health: [{ check: 'app', ok: false, attempts: 3, durationMs: 3000, lastError: 'HTTP 503' }],
          rollback: { ok: true, to: '111111111111', durationMs: 2000 },
        },
      ],
    },
  ],
  hosts: [
    { host: 'pc', stage: 'production', before: 'a', after: 'abcdef012345', state: 'new' },
    {
      host: 'vps',
      stage: 'public',
      before: 'a',
      after: 'a',
      state: 'previous',
      rollback: { ok: true, to: 'a', durationMs: 2000 },
    },
  ],
};

/** Every metric name the code renders, with the labels its samples carry (job and instance come from the scrape). */
function emittedLabels(): Map<string, Set<string>> {
  const base = { project: 'homelab', environment: 'home' };
  const { run, perHost } = reportFamilies(RUN, base);
  // An earlier failure leaves an incident open, so the open-incident gauge is rendered too.
  const failedFirst = addReport(totalsFromSamples([], base), { ...RUN, status: 'failed' });
  const totals = totalsFamilies(failedFirst, base);
  const kpis = kpiFamilies(
    [
      {
        stage: 'production',
        deploys: 2,
        succeeded: 1,
        successRate: 0.5,
        avgDeployMs: 1,
        avgRollbackMs: 1,
        mttrMs: 1,
        incidents: 1,
      },
    ],
    base,
  );
  const out = new Map<string, Set<string>>();
  const fams: Family[] = [...run, ...[...perHost.values()].flat(), ...totals, ...kpis];
  for (const f of fams)
    for (const s of f.samples) {
      const set = out.get(f.name) ?? new Set(['job', 'instance']);
      for (const k of Object.keys(s.labels)) set.add(k);
      out.set(f.name, set);
    }
  return out;
}

interface Query {
  where: string;
  expr: string;
  legend?: string;
}

function queries(dash: {
  panels: { title: string; targets?: { expr: string; legendFormat?: string }[] }[];
  templating: { list: { name: string; query?: string; type: string }[] };
}): Query[] {
  return [
    ...dash.panels.flatMap((p) =>
      (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr, legend: t.legendFormat })),
    ),
    ...dash.templating.list
      .filter((v) => v.type === 'query')
      .map((v) => ({ where: `variable $${v.name}`, expr: v.query as string })),
  ];
}

const intersect = (sets: Set<string>[]) =>
  sets.length ? [...sets[0]].filter((x) => sets.every((s) => s.has(x))) : [];

/**
 * What a query uses that the metrics do not have: unknown metrics, matchers and by()/on()/group_left()
 * labels the selected metrics lack, legend labels the result does not carry, label_values() of missing labels.
 */
function problems(q: Query, labels: Map<string, Set<string>>): string[] {
  const out: string[] = [];
  const metrics: string[] = [];
  for (const m of q.expr.matchAll(/\b(homelab_deploy_\w+)(?:\{([^}]*)\})?/g)) {
    const have = labels.get(m[1]);
    metrics.push(m[1]);
    if (!have) {
      out.push(`${q.where}: ${m[1]} is not emitted`);
      continue;
    }
    for (const mm of (m[2] ?? '').matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g))
      if (!have.has(mm[1])) out.push(`${q.where}: ${m[1]} has no label "${mm[1]}"`);
  }
  const common = intersect(metrics.flatMap((m) => (labels.has(m) ? [labels.get(m)!] : [])));
  const grouped = [...q.expr.matchAll(/\b(?:by|on|group_left|group_right)\s*\(([^)]*)\)/g)].map(
    (m) =>
      new Set(
        m[1]
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ),
  );
  for (const g of grouped)
    for (const l of g) if (!common.includes(l)) out.push(`${q.where}: not every metric has label "${l}"`);
  const byLists = [...q.expr.matchAll(/\bby\s*\(([^)]*)\)/g)].map(
    (m) => new Set(m[1].split(',').map((s) => s.trim())),
  );
  const result = byLists.length ? intersect(byLists) : common;
  for (const m of (q.legend ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g))
    if (!result.includes(m[1])) out.push(`${q.where}: legend {{${m[1]}}} is not a label of the result`);
  const lv = /^label_values\((\w+)(?:\{[^}]*\})?,\s*(\w+)\)$/.exec(q.expr);
  if (lv && !labels.get(lv[1])?.has(lv[2])) out.push(`${q.where}: ${lv[1]} has no label "${lv[2]}"`);
  return out;
}

describe('Grafana dashboard', () => {
  const text = fs.readFileSync(path.join(root, 'dashboards/grafana-homelab-deploy.json'), 'utf8');
  const dash = JSON.parse(text);
  const labels = emittedLabels();

  it('shows every metric the code emits, and the test renders all of them', () => {
    const src = ['metrics/from-report.ts', 'metrics/totals.ts']
      .map((f) => fs.readFileSync(path.join(root, 'src', f), 'utf8'))
      .join('\n');
    const named = new Set([...src.matchAll(/'(homelab_deploy_\w+)'/g)].map((m) => m[1]));
    expect([...named].filter((m) => !labels.has(m))).toEqual([]);
    const used = new Set(text.match(/homelab_deploy_\w+/g));
    expect([...labels.keys()].filter((m) => !used.has(m))).toEqual([]);
  });

  it('queries only metrics and labels that exist, and legends only labels the result keeps', () => {
    expect(queries(dash).flatMap((q) => problems(q, labels))).toEqual([]);
  });

  it('the analysis catches what it is meant to catch', () => {
    const bad = [
      { where: 'a', expr: 'homelab_deploy_deploys{stage="x"}', legend: '{{host}}' },
      { where: 'b', expr: 'homelab_deploy_kpi_nope', legend: '' },
      { where: 'c', expr: 'homelab_deploy_host_retries{check="x"}', legend: '' },
      { where: 'd', expr: 'sum by (status) (homelab_deploy_runs_total)', legend: '{{host}}' },
      { where: 'e', expr: 'label_values(homelab_deploy_last_run_status, host)' },
    ];
    expect(bad.flatMap((q) => problems(q, labels))).toEqual([
      'a: legend {{host}} is not a label of the result',
      'b: homelab_deploy_kpi_nope is not emitted',
      'c: homelab_deploy_host_retries has no label "check"',
      'd: legend {{host}} is not a label of the result',
      'e: homelab_deploy_last_run_status has no label "host"',
    ]);
  });

  it('is a dashboard Grafana imports: schema 36+, every panel but rows has a query', () => {
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36);
    const panels = dash.panels as { id?: number; type: string; targets?: unknown[] }[];
    expect(panels.filter((p) => p.type !== 'row').every((p) => (p.targets ?? []).length > 0)).toBe(true);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
