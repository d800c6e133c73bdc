import type {
  AuditRecord,
  HostFinalState,
  HostPhaseReport,
  PhaseReport,
  Report,
} from '../../src/report/types';
import type { WaveReport } from '../../src/report/html';

const OLD = 'a1b2c3d4e5f6';
const NEW = 'f6e5d4c3b2a1';
const T0 = Date.parse('2026-11-24T02:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

/** The 45 targets that fail, by class: pre-flight (unreachable), then in the stage (health, timeout, command). */
export const FAILING = Array.from({ length: 45 }, (_, i) => `site-f-${String(i).padStart(3, '0')}`);
const classOf = (i: number) =>
  i < 10 ? 'unreachable' : i < 30 ? 'health-failed' : i < 40 ? 'timeout' : ('command-failed' as const);

/**
 * A fleet rollout as the wave engine reports it: waves of 1, 10 %, 50 % and the rest; the 45 failing targets all
 * in wave 3, which passes the 5 % budget, so wave 4 never starts and the stage's failed targets are rolled back
 * (one rollback fails). The healthy targets are the only thing that grows with `n`.
 */
export function fleetReport(n: number): Report {
  const healthy = Array.from({ length: n - FAILING.length }, (_, i) => `site-${String(i).padStart(5, '0')}`);
  const w1 = healthy.slice(0, 1);
  const w2 = healthy.slice(1, 1 + n / 10);
  const w3healthy = healthy.slice(1 + n / 10, n / 10 + n / 2 - FAILING.length + 1);
  const w3 = [...FAILING, ...w3healthy];
  const w4 = healthy.slice(n / 10 + n / 2 - FAILING.length + 1);
  const all = [...w1, ...w2, ...w3, ...w4];
  const kind = (t: string): 'vercel' | 'ssh' =>
    !t.startsWith('site-f') && Number(t.slice(5)) % 5 === 0 ? 'vercel' : 'ssh';
  const failIndex = (t: string) => FAILING.indexOf(t);
  const preflightFailed = (t: string) => failIndex(t) >= 0 && failIndex(t) < 10;
  const waveStart: [string[], number, number][] = [
    [w1, 30, 20],
    [w2, 55, 60],
    [w3, 120, 200],
  ];

  const entry = (host: string, ok: boolean, durationMs: number, extra: Partial<HostPhaseReport> = {}) =>
    ({
      host,
      kind: kind(host),
      ok,
      durationMs,
      attempts: [{ attempt: 1, ok, durationMs }],
      steps: [],
      health: [],
      ...extra,
    }) as HostPhaseReport;

  const preflight: PhaseReport = {
    name: 'preflight',
    kind: 'preflight',
    status: 'ok',
    startedAt: at(0),
    durationMs: 18_000,
    hosts: all.map((h) =>
      preflightFailed(h)
        ? entry(h, false, 10_000, {
            error: {
              class: 'unreachable',
              message: `${h}: connect ECONNREFUSED 192.0.2.${failIndex(h) + 10}:22`,
              host: h,
              phase: 'preflight',
            },
          })
        : entry(h, true, 900),
    ),
  };
  const going = all.filter((h) => !preflightFailed(h));
  const secrets: PhaseReport = {
    name: 'secrets',
    kind: 'secrets',
    status: 'ok',
    startedAt: at(19),
    durationMs: 5_000,
    hosts: going.map((h) => entry(h, true, 300)),
  };
  const snapshot: PhaseReport = {
    name: 'snapshot',
    kind: 'snapshot',
    status: 'ok',
    startedAt: at(25),
    durationMs: 4_000,
    hosts: going.map((h) => entry(h, true, 200)),
  };
  const audit: AuditRecord[] = [];
  const siteHosts: HostPhaseReport[] = [];
  for (const [wave, start, dur] of waveStart)
    for (const h of wave) {
      if (preflightFailed(h)) continue;
      const i = failIndex(h);
      const startedAt = at(start + (siteHosts.length % 10));
      if (i < 0) {
        siteHosts.push(
          Object.assign(
            entry(h, true, dur * 500, {
              health: [
                { check: 'site', ok: true, attempts: 1, durationMs: 120, latency: { lastMs: 40, maxMs: 40 } },
              ],
            }),
            { startedAt },
          ),
        );
        continue;
      }
      const cls = classOf(i);
      const rbOk = i !== 44;
      const rbEnd = at(start + dur + 5);
      audit.push({
        time: rbEnd,
        action: 'rollback',
        host: h,
        detail: rbOk ? `to ${OLD}` : `FAILED, to ${OLD}`,
      });
      siteHosts.push(
        Object.assign(
          entry(h, false, dur * 600, {
            health:
              cls === 'health-failed'
                ? [
                    {
                      check: 'site',
                      ok: false,
                      attempts: 4,
                      durationMs: 8000,
                      lastError: `GET https://${h}.example.com/health: expected status 200, got 502`,
                    },
                  ]
                : [],
            steps:
              cls === 'command-failed'
                ? [
                    {
                      name: 'up',
                      ok: false,
                      exitCode: 1,
                      durationMs: 3000,
                      output: `${h}: build failed: out of memory`,
                    },
                  ]
                : [],
            error: {
              class: cls,
              message:
                cls === 'timeout'
                  ? `${h}: up timed out after 120s`
                  : cls === 'health-failed'
                    ? `${h}: site: expected status 200, got 502`
                    : `${h}: step "up" exited 1`,
              host: h,
              phase: 'sites',
            },
            rollback: rbOk
              ? { ok: true, to: OLD, durationMs: 2400 }
              : {
                  ok: false,
                  to: OLD,
                  durationMs: 900,
                  error: { class: 'command-failed', message: `rollback step "switch" failed on ${h}` },
                },
          }),
          { startedAt },
        ),
      );
    }
  const sites: PhaseReport = {
    name: 'sites',
    kind: 'stage',
    status: 'failed',
    startedAt: at(30),
    durationMs: 296_000,
    hosts: siteHosts,
    error: { class: 'health-failed', message: 'failure budget passed in wave 3 of sites', phase: 'sites' },
  };
  const finals: HostFinalState[] = all.map((h) => {
    const i = failIndex(h);
    const kindField = { kind: kind(h) };
    if (i >= 0 && i < 10)
      return { host: h, stage: 'sites', before: OLD, after: OLD, state: 'previous', ...kindField };
    if (i >= 10) {
      const rb = siteHosts.find((x) => x.host === h)!.rollback!;
      return rb.ok
        ? { host: h, stage: 'sites', before: OLD, after: OLD, state: 'previous', rollback: rb, ...kindField }
        : { host: h, stage: 'sites', before: OLD, after: NEW, state: 'new', rollback: rb, ...kindField };
    }
    if (w4.includes(h))
      return { host: h, stage: 'sites', before: OLD, after: OLD, state: 'previous', ...kindField };
    return { host: h, stage: 'sites', before: OLD, after: NEW, state: 'new', ...kindField };
  });
  const waves: WaveReport[] = [
    {
      stage: 'sites',
      index: 1,
      targets: w1,
      ok: 1,
      failed: 0,
      startedAt: at(30),
      durationMs: 20_000,
      budget: { maxFailPercentage: 5, failRate: 0, decision: 'continue' },
    },
    {
      stage: 'sites',
      index: 2,
      targets: w2,
      ok: w2.length,
      failed: 0,
      startedAt: at(55),
      durationMs: 60_000,
      budget: { maxFailPercentage: 5, failRate: 0, decision: 'continue' },
    },
    {
      stage: 'sites',
      index: 3,
      targets: w3,
      ok: w3.length - FAILING.length,
      failed: FAILING.length,
      startedAt: at(120),
      durationMs: 200_000,
      budget: {
        maxFailPercentage: 5,
        failRate: FAILING.length / w3.length,
        exceeded: true,
        decision: 'stop',
        policy: 'failed',
      },
      escalation: {
        sent: true,
        rate: FAILING.length / w3.length,
        channels: ['telegram'],
        firstFailing: FAILING.slice(0, 5),
      },
    },
    { stage: 'sites', index: 4, targets: w4, ok: 0, failed: 0, notStarted: w4.length, left: w4 },
  ];
  return {
    schema: 1,
    project: 'fleet',
    status: 'failed',
    phase: 'sites',
    systemsDeployed: finals.filter((f) => f.state === 'new').map((f) => f.host),
    durationSeconds: 331,
    startedAt: at(0),
    finishedAt: at(331),
    release: { id: NEW, commit: NEW + '0'.repeat(28), ref: 'refs/heads/main' },
    run: {
      id: '4242',
      url: 'https://github.com/example/sites/actions/runs/4242',
      repository: 'example/sites',
      actor: 'ops',
    },
    phasesRequested: ['preflight', 'secrets', 'snapshot', 'sites', 'verify'],
    error: {
      class: 'health-failed',
      message: 'failure budget passed in wave 3 of sites: 45 of 750 failed (6 %, budget 5 %)',
      phase: 'sites',
    },
    phases: [preflight, secrets, snapshot, sites],
    hosts: finals,
    audit,
    // The renderer reads waves loosely (old and partial reports too); this fixture writes its own shape.
    waves: waves as unknown as NonNullable<Report['waves']>,
  };
}
