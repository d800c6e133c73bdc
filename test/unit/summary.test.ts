import { renderSummary } from '../../src/report/summary';
import { mergePipelineReports, mergeReports } from '../../src/report/merge';
import { shardTargets } from '../../src/plan/shards';
import { loadConfig } from '../../src/config/load';
import type { HostFinalState, HostPhaseReport, Report } from '../../src/report/types';
import { writeConfig } from '../fixtures/config';

const OLD = '0123456789ab';
const NEW = 'fedcba987654';

function fleet(n: number, failEvery = 0): Report {
  const names = Array.from({ length: n }, (_, i) => `site-${String(i).padStart(4, '0')}`);
  const failed = (i: number) => failEvery > 0 && i % failEvery === 0;
  const hosts: HostFinalState[] = names.map((host, i) => ({
    host,
    stage: 'sites',
    before: OLD,
    after: failed(i) ? OLD : NEW,
    state: failed(i) ? 'previous' : 'new',
    rollback: failed(i)
      ? {
          ok: i !== 0,
          to: OLD,
          durationMs: 900,
          error: i === 0 ? { class: 'unreachable', message: 'connection to site-0000 was lost' } : undefined,
        }
      : undefined,
  }));
  const phaseHosts: HostPhaseReport[] = names.map((host, i) => ({
    host,
    ok: !failed(i),
    durationMs: 4200,
    attempts: [{ attempt: 1, ok: !failed(i), durationMs: 4200 }],
    steps: [],
    health: [
      {
        check: 'app',
        ok: !failed(i),
        attempts: 3,
        durationMs: 600,
        lastError: failed(i) ? 'GET http://x/health: expected status 200, got 503 | pipe' : undefined,
      },
    ],
    error: failed(i)
      ? { class: 'health-failed', message: `${host}: app: expected status 200, got 503` }
      : undefined,
  }));
  const anyFail = failEvery > 0;
  return {
    schema: 1,
    project: 'fleet',
    status: anyFail ? 'partial_success' : 'success',
    phase: 'verify',
    systemsDeployed: hosts.filter((h) => h.after === NEW).map((h) => h.host),
    durationSeconds: 95.5,
    startedAt: '2026-11-23T04:00:00.000Z',
    finishedAt: '2026-11-23T04:01:35.500Z',
    release: { id: NEW, commit: NEW + 'f'.repeat(28), ref: 'main' },
    run: {},
    phasesRequested: ['all'],
    error: anyFail
      ? { class: 'health-failed', message: 'site-0005: app: expected status 200, got 503' }
      : undefined,
    rollbackFailed: anyFail || undefined,
    phases: [
      { name: 'preflight', kind: 'preflight', status: 'ok', startedAt: '', durationMs: 800, hosts: [] },
      {
        name: 'sites',
        kind: 'stage',
        status: anyFail ? 'rolled_back' : 'ok',
        startedAt: '',
        durationMs: 60_000,
        hosts: phaseHosts,
        tests: {
          on: 'runner',
          ok: true,
          exitCode: 0,
          durationMs: 3000,
          outputTail: 'ok ```',
          junit: { tests: 12, passed: 11, failures: 0, errors: 0, skipped: 1 },
        },
      },
      { name: 'verify', kind: 'verify', status: 'ok', startedAt: '', durationMs: 2000, hosts: [] },
    ],
    hosts,
    audit: [],
  };
}

describe('job summary', () => {
  it('3 hosts: headline, mermaid phases, a row per host with release before → after, tests', () => {
    const md = renderSummary(fleet(3));
    expect(md).toMatch(/^## ✅ Deploy succeeded — fleet `fedcba987654`/);
    expect(md).toContain('```mermaid\nflowchart LR');
    expect(md).toContain('p1["sites"]:::ok');
    expect(md).toContain('p0 --> p1');
    expect(md).toContain(`| site-0001 | sites | ${OLD} → ${NEW} | 4.2s | 1 | 1/1 | ✅ |  |`);
    expect(md).toContain('### Tests (sites, on runner): ✅ passed — 11 passed, 0 failed, 1 skipped');
    expect(md).not.toMatch(/ok ```\n/);
    // Every check, passed ones too, one line each with its result, duration and attempts.
    expect(md).toContain('<details><summary>All checks (3)</summary>');
    expect(md).toContain('| sites | site-0002 | app | ✅ | 600ms | 3 | — |');
  });

  it('failures: error class, failed checks with escaped cells, and a loud failed rollback', () => {
    const md = renderSummary(fleet(12, 5));
    expect(md).toContain('## ⚠️ Partial success: manual intervention required');
    expect(md).toContain('> **health-failed**');
    expect(md).toContain('Rollback failed on **site-0000** (now on 0123456789ab)');
    expect(md).toContain('🔥 ROLLBACK FAILED');
    expect(md).toContain('got 503 \\| pipe');
    expect(md).toContain('p1["sites (rolled back)"]:::rolled_back');
  });

  it('1500 hosts stay under 1 MiB: failed hosts in full, the rest collapsed and counted', () => {
    const md = renderSummary(fleet(1500, 20));
    expect(Buffer.byteLength(md)).toBeLessThan(1024 * 1024);
    expect(md).toContain('**75 host(s) need attention:**');
    expect(md).toContain('**1425 host(s) fine:** sites: 1425');
    expect(md).toContain('<details><summary>All hosts</summary>');
    expect(md).toContain('| site-1480 | sites |');
  });

  it('truncates rather than exceeding the limit, closing an open <details>', () => {
    const md = renderSummary(fleet(1500, 20), { maxBytes: 50_000 });
    expect(Buffer.byteLength(md)).toBeLessThanOrEqual(50_000);
    expect(md).toContain('summary truncated');
    expect((md.match(/<details>/g) ?? []).length).toBe((md.match(/<\/details>/g) ?? []).length);
  });
});

describe('bulk: shards and merged reports', () => {
  const hosts = Array.from(
    { length: 1500 },
    (_, i) => `  s${i}: { address: 192.0.2.${(i % 250) + 1}, stage: production }`,
  ).join('\n');
  const config = loadConfig(
    writeConfig(
      `version: 1\nproject: fleet\ndefaults: { ssh: { key: k, known_hosts: known_hosts } }\nhosts:\n${hosts}\n`,
    ),
  );

  it('splits 1500 targets into near-equal shards within the 256-job matrix limit', () => {
    const m = shardTargets(config, 256);
    expect(m.include).toHaveLength(256);
    expect(m.include.reduce((a, s) => a + s.hosts, 0)).toBe(1500);
    expect(
      Math.max(...m.include.map((s) => s.hosts)) - Math.min(...m.include.map((s) => s.hosts)),
    ).toBeLessThanOrEqual(1);
    expect(new Set(m.include.flatMap((s) => s.targets.split(','))).size).toBe(1500);
    expect(() => shardTargets(config, 257)).toThrow(/1 to 256/);
  });

  it('merges shard reports: all success → success; some failed shards → partial_success', () => {
    const a = fleet(3);
    const b = { ...fleet(3, 1), status: 'rolled_back' as const, systemsDeployed: [] };
    b.hosts = b.hosts.map((h) => ({ ...h, host: h.host + '-b' }));
    expect(mergeReports([a, a]).status).toBe('success');
    const m = mergeReports([a, b]);
    expect(m.status).toBe('partial_success');
    expect(m.hosts).toHaveLength(6);
    expect(m.error?.message).toMatch(/^1 of 2 shards did not succeed/);
    expect(mergeReports([b]).status).toBe('rolled_back');
  });

  it('a shard without a report counts as failed, its hosts unknown, and says which shard', () => {
    const a = fleet(3);
    const expected = [
      { shard: 1, targets: a.hosts.map((h) => h.host).join(',') },
      { shard: 2, targets: 'site-9000,site-9001' },
    ];
    const m = mergeReports([a], { expected });
    expect(m.status).toBe('partial_success');
    expect(m.hosts.filter((h) => h.state === 'unknown')).toEqual([
      { host: 'site-9000', before: null, after: null, state: 'unknown' },
      { host: 'site-9001', before: null, after: null, state: 'unknown' },
    ]);
    expect(m.systemsDeployed).toEqual(a.systemsDeployed);
    expect(m.error).toMatchObject({
      class: 'internal',
      message:
        '1 of 2 shards did not succeed; 1 produced no report (shard 2; state unknown on site-9000, site-9001)',
    });
    // Without the plan, the missing shard would go unnoticed: that is what the matrix is for.
    expect(mergeReports([a]).status).toBe('success');
    // Every shard reported: the expectation changes nothing.
    expect(mergeReports([a], { expected: expected.slice(0, 1) })).toEqual(mergeReports([a]));
    const md = renderSummary(m);
    expect(md).toContain('| site-9000 | — | — → — |');
    expect(md).toContain('1 produced no report (shard 2');
  });

  it('no shard reported at all: failed, every planned host unknown', () => {
    const m = mergeReports([], {
      expected: [
        { shard: 1, targets: 'a,b' },
        { shard: 2, targets: 'c' },
      ],
    });
    expect(m.status).toBe('failed');
    expect(m.hosts.map((h) => `${h.host}:${h.state}`)).toEqual(['a:unknown', 'b:unknown', 'c:unknown']);
    expect(m.error?.message).toMatch(/^2 of 2 shards did not succeed; 2 produced no report/);
    expect(() => mergeReports([])).toThrow('no reports to merge');
  });

  it('refuses to merge reports of different commits', () => {
    const a = fleet(2);
    const b = { ...fleet(2), release: { ...a.release, commit: 'b'.repeat(40) } };
    expect(() => mergeReports([a, b])).toThrow(/different commits \(fedcba987654, bbbbbbbbbbbb\)/);
    expect(() => mergePipelineReports([a, b], 'success')).toThrow(/different commits/);
  });
});

describe('pipeline: the jobs of deploy.yml merged into one report', () => {
  const COMMIT = NEW + 'f'.repeat(28);
  function job(
    name: string,
    startedAt: string,
    status: Report['status'],
    hosts: HostFinalState[],
    extra: Partial<Report> = {},
  ): Report {
    return {
      schema: 1,
      project: 'homelab',
      status,
      phase: name,
      systemsDeployed: hosts.filter((h) => h.after === NEW && h.stage).map((h) => h.host),
      durationSeconds: 10,
      startedAt,
      finishedAt: startedAt.replace(':00.000Z', ':10.000Z'),
      release: { id: NEW, commit: COMMIT, ref: 'main' },
      run: { id: '7-1' },
      phasesRequested: [name],
      phases: [
        {
          name,
          kind: 'stage',
          status: status === 'success' ? 'ok' : 'failed',
          startedAt,
          durationMs: 10_000,
          hosts: [],
        },
      ],
      hosts,
      audit: [{ time: startedAt, action: 'deploy', host: hosts[0].host }],
      ...extra,
    };
  }
  const on = (host: string, stage: string, before: string | null, after: string | null): HostFinalState => ({
    host,
    stage,
    before,
    after,
    state: after === NEW ? (before === NEW ? 'unchanged' : 'new') : after === null ? 'none' : 'previous',
  });
  // Given out of order on purpose: artifacts come back sorted by name, not by time.
  const verify = job('verify', '2026-11-23T09:00:00.000Z', 'success', [
    on('thinkpad', 'staging', NEW, NEW),
    on('rtx1080', 'production', NEW, NEW),
  ]);
  const staging = job('staging', '2026-11-23T04:00:00.000Z', 'success', [
    on('thinkpad', 'staging', OLD, NEW),
  ]);
  const production = job('production', '2026-11-23T08:59:00.000Z', 'success', [
    on('rtx1080', 'production', OLD, NEW),
  ]);

  it('phases in job order, each host once with its state before the first job and after the last', () => {
    const m = mergePipelineReports([verify, production, staging], 'success');
    expect(m.phases.map((p) => p.name)).toEqual(['staging', 'production', 'verify']);
    expect(m.hosts).toEqual([
      { host: 'thinkpad', stage: 'staging', before: OLD, after: NEW, state: 'new' },
      { host: 'rtx1080', stage: 'production', before: OLD, after: NEW, state: 'new' },
    ]);
    expect(m.systemsDeployed).toEqual(['thinkpad', 'rtx1080']);
    expect(m.status).toBe('success');
    expect(m.error).toBeUndefined();
    // From the staging job's start to verify's end: the approval wait is part of what happened.
    expect(m.durationSeconds).toBe(5 * 3600 + 10);
    expect(m.audit).toHaveLength(3);
    expect(renderSummary(m)).toContain(`| thinkpad | staging | ${OLD} → ${NEW} |`);
  });

  it('takes the status the workflow derived, and the error of the first job that did not succeed', () => {
    const vps = job(
      'public',
      '2026-11-23T08:59:30.000Z',
      'failed',
      [
        {
          host: 'vps',
          stage: 'public',
          before: OLD,
          after: OLD,
          state: 'previous',
          rollback: { ok: true, to: OLD, durationMs: 900 },
        },
      ],
      { error: { class: 'unreachable', message: 'vps: connection refused', phase: 'public' } },
    );
    const m = mergePipelineReports([staging, production, vps, verify], 'partial_success');
    expect(m.status).toBe('partial_success');
    expect(m.phase).toBe('public');
    expect(m.error).toEqual({ class: 'unreachable', message: 'vps: connection refused', phase: 'public' });
    expect(m.hosts.find((h) => h.host === 'vps')).toMatchObject({
      state: 'previous',
      rollback: { ok: true },
    });
    expect(m.systemsDeployed).toEqual(['thinkpad', 'rtx1080']);
  });

  it('a job that left no report (a rejected approval): the status says so and the error explains', () => {
    const m = mergePipelineReports([staging], 'failed');
    expect(m.status).toBe('failed');
    expect(m.error?.message).toMatch(/no job report says why: a job was rejected, cancelled or stopped/);
    expect(m.systemsDeployed).toEqual(['thinkpad']);
  });
});
