import { computeKpis } from '../../src/history/kpi';
import { parseReleaseLog, recordsFromReleaseLogs, recordsFromReports } from '../../src/history/records';
import { render } from '../../src/metrics/exposition';
import { kpiFamilies } from '../../src/metrics/from-report';
import type { PhaseReport, Report } from '../../src/report/types';

const t = (h: number, m: number, s = 0) =>
  `2026-11-20T${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.000Z`;

type L = Record<string, unknown>;
const deploy = (o: L) => ({ event: 'deploy', stage: 'production', ...o });
const rollback = (o: L) => ({ event: 'rollback', stage: 'production', result: 'rolled_back', ...o });

/**
 * Each host's releases.log as the engine writes it: JSON lines with the run token on every line, `durationMs` on
 * `deployed` lines (that host's deploy time) and on rollback lines (the rollback's time). Production has three
 * hosts (p1, p2, p3); staging one (s1). Times are minutes past 10:00.
 *
 *   A 10:00  staging ok (s1 25 s); production ok on all three hosts: 30 s, 45 s, 40 s → one deploy of 45 s
 *   B 10:30  production: p2 fails at 10:30 and again at 10:31 (retry), the stage is rolled back at 10:35 on all
 *            three, each rollback 12-20 s → one rolled-back deploy, rollback time 20 s (not 10:31 → 10:35)
 *   C 10:50  production: p1 fails, p1's rollback fails (no rollback line) → failed
 *   D 11:00  production ok; the `started` lines are five minutes before `deployed`, but durationMs says 90 s
 *            → incident 10:30 → 11:05 = 2100 s
 *   E 12:00  staging ok at 12:00:30, production fails at 12:10 and rollback-all withdraws staging too
 *            (rollback lines on s1 without failures of its own) → staging rolled back, not a success
 *   F 12:40, G 12:50  two CLI runs in the same hour on staging: two deploys, not one
 *   H 13:00  production fails, nothing after: an open incident
 *   I 13:05  production started, still running: left out
 */
const logs: Record<string, L[]> = {
  s1: [
    deploy({ stage: 'staging', time: t(9, 59), release: 'r1', result: 'started', token: 'A' }),
    deploy({
      stage: 'staging',
      time: t(10, 0),
      release: 'r1',
      result: 'deployed',
      token: 'A',
      durationMs: 25_000,
    }),
    deploy({ stage: 'staging', time: t(11, 59), release: 'r5', result: 'started', token: 'E' }),
    deploy({
      stage: 'staging',
      time: t(12, 0, 30),
      release: 'r5',
      result: 'deployed',
      token: 'E',
      durationMs: 28_000,
    }),
    rollback({ stage: 'staging', time: t(12, 11), release: 'r5', token: 'E', durationMs: 9_000 }),
    deploy({ stage: 'staging', time: t(12, 40), release: 'r6', result: 'started', token: 'F' }),
    deploy({
      stage: 'staging',
      time: t(12, 41),
      release: 'r6',
      result: 'deployed',
      token: 'F',
      durationMs: 20_000,
    }),
    deploy({ stage: 'staging', time: t(12, 50), release: 'r7', result: 'started', token: 'G' }),
    deploy({
      stage: 'staging',
      time: t(12, 51),
      release: 'r7',
      result: 'deployed',
      token: 'G',
      durationMs: 22_000,
    }),
  ],
  p1: [
    deploy({ time: t(10, 1), release: 'r1', result: 'started', token: 'A' }),
    deploy({ time: t(10, 2), release: 'r1', result: 'deployed', token: 'A', durationMs: 30_000 }),
    deploy({ time: t(10, 29), release: 'r2', result: 'started', token: 'B' }),
    rollback({ time: t(10, 35), release: 'r2', token: 'B', durationMs: 12_000 }),
    deploy({ time: t(10, 49), release: 'r3', result: 'started', token: 'C' }),
    deploy({ time: t(10, 50), release: 'r3', result: 'failed', token: 'C' }),
    deploy({ time: t(11, 0), release: 'r4', result: 'started', token: 'D' }),
    deploy({ time: t(11, 5), release: 'r4', result: 'deployed', token: 'D', durationMs: 90_000 }),
    deploy({ time: t(12, 5), release: 'r5', result: 'started', token: 'E' }),
    deploy({ time: t(12, 10), release: 'r5', result: 'failed', token: 'E' }),
    rollback({ time: t(12, 10, 30), release: 'r5', token: 'E', durationMs: 15_000 }),
    deploy({ time: t(13, 0), release: 'r8', result: 'failed', token: 'H' }),
    deploy({ time: t(13, 5), release: 'r9', result: 'started', token: 'I' }),
  ],
  p2: [
    deploy({ time: t(10, 1), release: 'r1', result: 'started', token: 'A' }),
    deploy({ time: t(10, 2), release: 'r1', result: 'deployed', token: 'A', durationMs: 45_000 }),
    deploy({ time: t(10, 29), release: 'r2', result: 'started', token: 'B' }),
    deploy({ time: t(10, 30), release: 'r2', result: 'failed', token: 'B', attempt: 1 }),
    deploy({ time: t(10, 31), release: 'r2', result: 'failed', token: 'B', attempt: 2 }),
    rollback({ time: t(10, 35), release: 'r2', token: 'B', durationMs: 20_000 }),
    deploy({ time: t(11, 0), release: 'r4', result: 'started', token: 'D' }),
    deploy({ time: t(11, 5), release: 'r4', result: 'deployed', token: 'D', durationMs: 80_000 }),
    deploy({ time: t(12, 5), release: 'r5', result: 'started', token: 'E' }),
    rollback({ time: t(12, 10, 30), release: 'r5', token: 'E', durationMs: 14_000 }),
  ],
  p3: [
    deploy({ time: t(10, 1), release: 'r1', result: 'started', token: 'A' }),
    deploy({ time: t(10, 2), release: 'r1', result: 'deployed', token: 'A', durationMs: 40_000 }),
    deploy({ time: t(10, 29), release: 'r2', result: 'started', token: 'B' }),
    rollback({ time: t(10, 35), release: 'r2', token: 'B', durationMs: 15_000 }),
    deploy({ time: t(10, 49), release: 'r3', result: 'started', token: 'C' }),
    rollback({ time: t(10, 51), release: 'r3', token: 'C', durationMs: 5_000 }),
    deploy({ time: t(11, 0), release: 'r4', result: 'started', token: 'D' }),
    deploy({ time: t(11, 5), release: 'r4', result: 'deployed', token: 'D', durationMs: 70_000 }),
    deploy({ time: t(12, 5), release: 'r5', result: 'started', token: 'E' }),
    rollback({ time: t(12, 10, 30), release: 'r5', token: 'E', durationMs: 13_000 }),
  ],
};

function parseAll(extra: Record<string, string[]> = {}) {
  let corrupt = 0;
  const lines = Object.entries(logs).flatMap(([host, ls]) => {
    const text = [...ls.map((l) => JSON.stringify({ host, ...l })), ...(extra[host] ?? [])].join('\n');
    const p = parseReleaseLog(text, host);
    corrupt += p.corrupt;
    return p.lines;
  });
  return { lines, corrupt };
}

describe('deploy history from release logs', () => {
  const parsed = parseAll({ p1: ['this is not json', '{"time":"not a date","release":"x"}'] });
  const records = recordsFromReleaseLogs(parsed.lines);
  const byToken = (stage: string) =>
    Object.fromEntries(records.filter((r) => r.stage === stage).map((r) => [r.token, r]));

  it('counts one deploy per stage and run, over all its hosts; skips corrupt lines and unfinished deploys', () => {
    expect(parsed.corrupt).toBe(2);
    const prod = byToken('production');
    expect(Object.keys(prod).sort()).toEqual(['A', 'B', 'C', 'D', 'E', 'H']);
    expect(prod.A).toMatchObject({ outcome: 'success', hosts: ['p1', 'p2', 'p3'], durationMs: 45_000 });
    expect(Object.keys(byToken('staging')).sort()).toEqual(['A', 'E', 'F', 'G']);
  });

  it('takes deploy and rollback times from durationMs, the slowest host of the stage', () => {
    const prod = byToken('production');
    expect(prod.B).toMatchObject({ outcome: 'rolled_back', rollbackMs: 20_000, failedAt: t(10, 30) });
    expect(prod.D).toMatchObject({ outcome: 'success', durationMs: 90_000, time: t(11, 5) });
  });

  it('a failed rollback leaves the deploy failed; a stage withdrawn for a later failure is not a success', () => {
    const prod = byToken('production');
    expect(prod.C).toMatchObject({ outcome: 'failed', failedAt: t(10, 50), rollbackMs: 5_000 });
    expect(byToken('staging').E).toMatchObject({
      outcome: 'rolled_back',
      rollbackMs: 9_000,
      failedAt: t(12, 10, 51), // the rollback's start: 12:11 minus its 9 s
    });
  });

  it('computes KPIs per stage: success rate, average times, MTTR and the open incident', () => {
    const kpis = computeKpis(records);
    expect(kpis.find((k) => k.stage === 'production')).toEqual({
      stage: 'production',
      deploys: 6,
      succeeded: 2,
      successRate: 2 / 6,
      avgDeployMs: (45_000 + 90_000) / 2,
      avgRollbackMs: (20_000 + 5_000 + 15_000) / 3,
      // B's failure at 10:30 to D's success at 11:05; C failed inside the same incident.
      mttrMs: 35 * 60_000,
      incidents: 1,
      openIncidentSince: t(12, 10),
      lastDeploy: t(13, 0),
    });
    expect(kpis.find((k) => k.stage === 'staging')).toEqual({
      stage: 'staging',
      deploys: 4,
      succeeded: 3,
      successRate: 3 / 4,
      avgDeployMs: (25_000 + 20_000 + 22_000) / 3,
      avgRollbackMs: 9_000,
      // From the withdrawal of E (its rollback began 12:10:51) to F at 12:41.
      mttrMs: Date.parse(t(12, 41)) - Date.parse(t(12, 10, 51)),
      incidents: 1,
      openIncidentSince: undefined,
      lastDeploy: t(12, 51),
    });
  });

  it("a rollback made by a later job (its own token) withdraws the earlier job's deploy, it is no new deploy", () => {
    const jobs = [
      { host: 's1', time: t(14, 0), release: 'w1', result: 'started', token: 'J1' },
      { host: 's1', time: t(14, 1), release: 'w1', result: 'deployed', token: 'J1', durationMs: 50_000 },
      { host: 'p1', time: t(14, 10), release: 'w1', result: 'started', token: 'J2', stage: 'production' },
      { host: 'p1', time: t(14, 11), release: 'w1', result: 'deployed', token: 'J2', stage: 'production' },
      {
        host: 's1',
        time: t(14, 20),
        release: 'w1',
        event: 'rollback',
        result: 'rolled_back',
        token: 'J3',
        durationMs: 7_000,
      },
      {
        host: 'p1',
        time: t(14, 20),
        release: 'w1',
        event: 'rollback',
        result: 'rolled_back',
        token: 'J3',
        stage: 'production',
        durationMs: 8_000,
      },
    ].map((l) => JSON.stringify(deploy({ stage: 'staging', ...l })));
    const recs = recordsFromReleaseLogs(parseReleaseLog(jobs.join('\n'), 's1').lines);
    expect(recs.map((r) => [r.stage, r.token, r.outcome, r.rollbackMs, r.failedAt])).toEqual([
      ['staging', 'J1', 'rolled_back', 7_000, t(14, 19, 53)],
      ['production', 'J2', 'rolled_back', 8_000, t(14, 19, 52)],
    ]);
  });

  it('groups lines written before run tokens by run id, or by host, release and hour', () => {
    const legacy = [
      {
        time: t(9, 0),
        event: 'deploy',
        stage: 'qa',
        release: 'q1',
        result: 'deployed',
        runId: '77',
        host: 'a',
      },
      {
        time: t(9, 1),
        event: 'deploy',
        stage: 'qa',
        release: 'q1',
        result: 'deployed',
        runId: '77',
        host: 'b',
      },
      { time: t(9, 10), event: 'deploy', stage: 'qa', release: 'q2', result: 'started', host: 'a' },
      { time: t(9, 12), event: 'deploy', stage: 'qa', release: 'q2', result: 'deployed', host: 'a' },
    ].map((l) => JSON.stringify(l));
    const recs = recordsFromReleaseLogs(parseReleaseLog(legacy.join('\n'), 'a').lines);
    expect(recs.map((r) => [r.release, r.hosts, r.outcome, r.durationMs])).toEqual([
      ['q1', ['a', 'b'], 'success', undefined],
      ['q2', ['a'], 'success', 120_000],
    ]);
  });
});

function phase(name: string, status: PhaseReport['status'], start: string, durationMs: number): PhaseReport {
  return { name, kind: 'stage', status, startedAt: start, durationMs, hosts: [] };
}

function report(o: Partial<Report> & Pick<Report, 'phases' | 'hosts' | 'finishedAt'>): Report {
  return {
    schema: 1,
    project: 'homelab',
    status: 'success',
    phase: 'verify',
    systemsDeployed: [],
    durationSeconds: 1,
    startedAt: o.finishedAt,
    release: { id: 'abcdef012345', commit: 'abcdef0123456789abcdef0123456789abcdef01', ref: 'main' },
    run: { id: '1' },
    phasesRequested: ['all'],
    audit: [],
    ...o,
  };
}

describe('deploy history from reports', () => {
  it('counts stages rolled back after passing as rolled back, also in reports written before that status', () => {
    const rolledBack = { ok: true, to: '111111111111', durationMs: 4_000 };
    const newer = report({
      status: 'rolled_back',
      finishedAt: t(10, 10),
      phases: [
        phase('staging', 'rolled_back', t(10, 0), 60_000),
        phase('production', 'failed', t(10, 1), 120_000),
      ],
      hosts: [
        { host: 's1', stage: 'staging', before: 'a', after: 'a', state: 'previous', rollback: rolledBack },
        { host: 'p1', stage: 'production', before: 'a', after: 'a', state: 'previous', rollback: rolledBack },
      ],
    });
    const older = report({
      status: 'rolled_back',
      finishedAt: t(11, 10),
      phases: [phase('staging', 'ok', t(11, 0), 50_000), phase('production', 'failed', t(11, 1), 60_000)],
      hosts: [
        { host: 's1', stage: 'staging', before: 'a', after: 'a', state: 'previous', rollback: rolledBack },
        {
          host: 'p1',
          stage: 'production',
          before: 'a',
          after: 'b',
          state: 'unknown',
          rollback: { ok: false, to: 'a', durationMs: 9_000 },
        },
      ],
    });
    const good = report({
      finishedAt: t(12, 5),
      phases: [phase('staging', 'ok', t(12, 0), 40_000), phase('production', 'ok', t(12, 1), 70_000)],
      hosts: [
        { host: 's1', stage: 'staging', before: 'a', after: 'c', state: 'new' },
        { host: 'p1', stage: 'production', before: 'a', after: 'c', state: 'new' },
      ],
    });
    const recs = recordsFromReports([newer, older, good]);
    expect(recs.map((r) => `${r.stage}:${r.outcome}`)).toEqual([
      'staging:rolled_back',
      'production:rolled_back',
      'staging:rolled_back',
      'production:failed',
      'staging:success',
      'production:success',
    ]);
    // The withdrawn staging deploy failed when production did (10:01 + 120 s).
    expect(recs[0].failedAt).toBe(new Date(Date.parse(t(10, 1)) + 120_000).toISOString());
    const prod = computeKpis(recs).find((k) => k.stage === 'production');
    expect(prod).toMatchObject({
      deploys: 3,
      succeeded: 1,
      avgDeployMs: 70_000,
      avgRollbackMs: (4_000 + 9_000) / 2,
      // From the first failure (10:03) to the good deploy's end (12:02:10).
      mttrMs: Date.parse(t(12, 2, 10)) - Date.parse(t(10, 3)),
      incidents: 1,
    });
  });
});

describe('KPI metrics', () => {
  it('label each stage `stage`, with the same project and environment labels as the run metrics', () => {
    const kpis = computeKpis(recordsFromReleaseLogs(parseAll().lines));
    const text = render(kpiFamilies(kpis, { project: 'homelab', environment: 'home' }));
    expect(text).toContain('# TYPE homelab_deploy_success_ratio gauge');
    expect(text).toContain(
      'homelab_deploy_deploys{project="homelab",environment="home",stage="production"} 6',
    );
    expect(text).toContain(
      'homelab_deploy_mttr_seconds{project="homelab",environment="home",stage="production"} 2100',
    );
    expect(text).toContain(
      'homelab_deploy_deploy_seconds_avg{project="homelab",environment="home",stage="staging"}',
    );
    expect(text).not.toMatch(/environment="(production|staging)"/);
  });
});
