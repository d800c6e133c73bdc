import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { parseExposition, render } from '../../src/metrics/exposition';
import { addReport, totalsFamilies, totalsFromSamples } from '../../src/metrics/totals';
import { publishOutcome } from '../../src/observe';
import type { Report } from '../../src/report/types';
import { Redactor } from '../../src/secrets/redact';
import { MINIMAL, writeConfig } from '../fixtures/config';

const at = (min: number, sec = 0) => new Date(Date.UTC(2026, 10, 20, 10, min, sec)).toISOString();

/** A run of one production stage on two hosts that passed, failed (and was rolled back) or was a dry run. */
function run(kind: 'ok' | 'rolled_back' | 'dry', min: number): Report {
  const ok = kind !== 'rolled_back';
  const rollback = ok ? undefined : { ok: true, to: 'old', durationMs: 4_000 };
  return {
    schema: 1,
    project: 'app',
    status: ok ? 'success' : 'failed',
    phase: 'production',
    systemsDeployed: ok ? ['rtx1080', 'vps'] : [],
    durationSeconds: 30,
    startedAt: at(min),
    finishedAt: at(min, 30),
    release: { id: `r${min}`, commit: 'abcdef0123456789abcdef0123456789abcdef01', ref: 'main' },
    run: {},
    phasesRequested: ['all'],
    audit: [],
    dryRun: kind === 'dry' || undefined,
    phases: [
      {
        name: 'production',
        kind: 'stage',
        status: ok ? 'ok' : 'failed',
        startedAt: at(min),
        durationMs: 20_000,
        hosts: [],
      },
    ],
    hosts: ['rtx1080', 'vps'].map((host) => ({
      host,
      stage: 'production',
      before: 'old',
      after: ok ? `r${min}` : 'old',
      state: ok ? ('new' as const) : ('previous' as const),
      rollback,
    })),
  };
}

const value = (text: string, name: string, labels: Record<string, string>) =>
  parseExposition(text)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .map((s) => s.value);

describe('run counters (read-modify-write)', () => {
  it('counts runs, deploys per stage (not per host), durations and MTTR across runs', () => {
    const base = { project: 'app', environment: 'home' };
    let t = totalsFromSamples([], base);
    for (const [kind, min] of [
      ['ok', 0],
      ['rolled_back', 10],
      ['rolled_back', 20],
      ['dry', 25],
      ['ok', 30],
    ] as const)
      t = totalsFromSamples(
        parseExposition(render(totalsFamilies(addReport(t, run(kind, min)), base))),
        base,
      );
    const text = render(totalsFamilies(t, base));
    const prod = { ...base, stage: 'production' };
    expect(value(text, 'homelab_deploy_runs_total', { ...base, status: 'success' })).toEqual([2]);
    expect(value(text, 'homelab_deploy_runs_total', { ...base, status: 'failed' })).toEqual([2]);
    expect(value(text, 'homelab_deploy_runs_total', { ...base, status: 'aborted' })).toEqual([0]);
    expect(value(text, 'homelab_deploy_stage_deploys_total', { ...prod, outcome: 'success' })).toEqual([2]);
    expect(value(text, 'homelab_deploy_stage_deploys_total', { ...prod, outcome: 'rolled_back' })).toEqual([
      2,
    ]);
    expect(value(text, 'homelab_deploy_stage_deploy_seconds_total', prod)).toEqual([40]);
    expect(value(text, 'homelab_deploy_stage_rollbacks_total', prod)).toEqual([2]);
    expect(value(text, 'homelab_deploy_stage_rollback_seconds_total', prod)).toEqual([8]);
    // The incident opened when the 10:10 deploy failed (10:10:20) and closed when 10:30's passed (10:30:20).
    expect(value(text, 'homelab_deploy_stage_recoveries_total', prod)).toEqual([1]);
    expect(value(text, 'homelab_deploy_stage_recovery_seconds_total', prod)).toEqual([1200]);
    expect(value(text, 'homelab_deploy_stage_incident_open_since_timestamp_seconds', prod)).toEqual([]);
  });

  it("publishOutcome carries the textfile counters forward and leaves other projects' series alone", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-totals-'));
    const textfile = path.join(dir, 'homelab_deploy.prom');
    // What another project's run left in the same file: kept as it is, not counted as ours.
    fs.writeFileSync(
      textfile,
      '# TYPE homelab_deploy_runs_total counter\nhomelab_deploy_runs_total{project="other",environment="app",status="success"} 41\n',
    );
    const config = loadConfig(writeConfig(`${MINIMAL}metrics:\n  textfile: ${textfile}\n`));
    const warnings: string[] = [];
    const o = { env: {}, redactor: new Redactor(), warn: (m: string) => warnings.push(m), context: {} };
    await publishOutcome(config, run('ok', 0), o);
    await publishOutcome(config, run('rolled_back', 10), o);
    let text = fs.readFileSync(textfile, 'utf8');
    // No environment configured or given: the project names the environment.
    const base = { project: 'app', environment: 'app' };
    expect(value(text, 'homelab_deploy_runs_total', { ...base, status: 'success' })).toEqual([1]);
    expect(value(text, 'homelab_deploy_runs_total', { ...base, status: 'failed' })).toEqual([1]);
    expect(value(text, 'homelab_deploy_runs_total', { project: 'other' })).toEqual([41]);
    expect(
      value(text, 'homelab_deploy_stage_incident_open_since_timestamp_seconds', {
        ...base,
        stage: 'production',
      }),
    ).toEqual([Date.parse(at(10, 20)) / 1000]);
    await publishOutcome(config, run('ok', 30), o);
    text = fs.readFileSync(textfile, 'utf8');
    expect(value(text, 'homelab_deploy_runs_total', { ...base, status: 'success' })).toEqual([2]);
    expect(
      value(text, 'homelab_deploy_stage_recovery_seconds_total', { ...base, stage: 'production' }),
    ).toEqual([1200]);
    // Each family is declared once, as node_exporter's textfile collector requires.
    expect(text.match(/^# TYPE homelab_deploy_runs_total counter$/gm)).toHaveLength(1);
    expect(warnings).toEqual([]);
  });
});
