import { computeKpis } from '../../src/history/kpi';
import { parseReleaseLog, recordsFromReleaseLogs } from '../../src/history/records';
import { render } from '../../src/metrics/exposition';
import { kpiFamilies } from '../../src/metrics/from-report';

const line = (o: Record<string, unknown>) => JSON.stringify({ host: 'rtx1080', stage: 'production', ...o });

/**
 * A crafted production history (times in minutes past 10:00):
 *   r1 ok 10:00-10:02 (120 s); r2 fails 10:30, rolled back 10:31 (60 s); r3 fails 10:50 (no rollback line);
 *   r4 ok 11:00-11:01:30 (90 s) — incident 10:30 → 11:01:30 = 1890 s;
 *   r5 rolled back at 12:00:45 after failing at 12:00; r6 ok 12:30-12:31 (61 s logged) — incident 12:00 → 12:31 = 1860 s
 *   (the incident opens at the first non-success record, the rollback at 12:00:45);
 *   r7 fails at 13:00 and nothing after: an open incident.
 */
const t = (h: number, m: number, s = 0) =>
  `2026-11-20T${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.000Z`;
const log = [
  line({ time: t(10, 0), event: 'deploy', release: 'r1', result: 'started', runId: 'a' }),
  line({ time: t(10, 2), event: 'deploy', release: 'r1', result: 'deployed', runId: 'a' }),
  line({ time: t(10, 30), event: 'deploy', release: 'r2', result: 'failed', runId: 'b' }),
  line({ time: t(10, 31), event: 'rollback', release: 'r2', result: 'rolled_back', runId: 'b' }),
  'this is not json',
  line({ time: t(10, 50), event: 'deploy', release: 'r3', result: 'failed', runId: 'c' }),
  line({ time: t(11, 0), event: 'deploy', release: 'r4', result: 'started', runId: 'd' }),
  line({ time: t(11, 1, 30), event: 'deploy', release: 'r4', result: 'deployed', runId: 'd' }),
  line({ time: t(12, 0), event: 'deploy', release: 'r5', result: 'failed', runId: 'e' }),
  line({ time: t(12, 0, 45), event: 'rollback', release: 'r5', result: 'rolled_back', runId: 'e' }),
  line({ time: t(12, 30), event: 'deploy', release: 'r6', result: 'started', runId: 'f' }),
  line({
    time: t(12, 31),
    event: 'deploy',
    release: 'r6',
    result: 'deployed',
    runId: 'f',
    durationMs: 61_000,
  }),
  '{"time":"not a date","release":"x"}',
  line({ time: t(13, 0), event: 'deploy', release: 'r7', result: 'failed', runId: 'g' }),
  line({ time: t(13, 5), event: 'deploy', release: 'r8', result: 'started', runId: 'h' }),
  JSON.stringify({
    host: 'thinkpad',
    stage: 'staging',
    time: t(9, 0),
    event: 'deploy',
    release: 'r1',
    result: 'deployed',
    runId: 'a',
    durationMs: 30_000,
  }),
].join('\n');

describe('deploy history KPIs', () => {
  const parsed = parseReleaseLog(log, 'rtx1080');
  const records = recordsFromReleaseLogs(parsed.lines);
  const kpis = computeKpis(records);

  it('counts corrupt lines and skips deploys that never finished', () => {
    expect(parsed.corrupt).toBe(2);
    expect(
      records.filter((r) => r.environment === 'production').map((r) => `${r.release}:${r.outcome}`),
    ).toEqual(
      expect.arrayContaining([
        'r1:success',
        'r2:rolled_back',
        'r3:failed',
        'r4:success',
        'r5:rolled_back',
        'r6:success',
        'r7:failed',
      ]),
    );
    expect(records.some((r) => r.release === 'r8')).toBe(false);
  });

  it('computes success rate, average deploy and rollback time, MTTR and the open incident', () => {
    const prod = kpis.find((k) => k.environment === 'production');
    expect(prod).toEqual({
      environment: 'production',
      deploys: 7,
      succeeded: 3,
      successRate: 3 / 7,
      avgDeployMs: (120_000 + 90_000 + 61_000) / 3,
      avgRollbackMs: (60_000 + 45_000) / 2,
      mttrMs: (1_890_000 + 1_860_000) / 2,
      incidents: 2,
      openIncidentSince: t(13, 0),
      lastDeploy: t(13, 0),
    });
    expect(kpis.find((k) => k.environment === 'staging')).toMatchObject({
      deploys: 1,
      successRate: 1,
      avgDeployMs: 30_000,
      mttrMs: undefined,
    });
  });

  it('exposes the KPIs as Prometheus gauges per environment', () => {
    const text = render(kpiFamilies(kpis, { project: 'homelab' }));
    expect(text).toContain('# TYPE homelab_deploy_success_ratio gauge');
    expect(text).toContain('homelab_deploy_deploys{project="homelab",environment="production"} 7');
    expect(text).toContain('homelab_deploy_mttr_seconds{project="homelab",environment="production"} 1875');
    expect(text).not.toContain('homelab_deploy_mttr_seconds{project="homelab",environment="staging"}');
  });
});
