import { renderSummary } from '../../src/report/summary';
import { mergeReports } from '../../src/report/merge';
import { shardTargets } from '../../src/pipeline/shards';
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
});
