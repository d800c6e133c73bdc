import { deploy } from '../../src/engine';
import type { Report } from '../../src/report/types';
import { Redactor } from '../../src/secrets/redact';
import { HEALTH_CHECK, useFleetHosts, type FleetProject, type FleetSpec } from '../helpers/fleet-hosts';

/**
 * What stops a run before it touches a host (the deploy window, the human checkpoint) and what a window does to a
 * rollout that outlasts it; and stages and --targets that select hosts by label. Each outcome is checked on the
 * hosts' own folders, and "nothing touched" also by the connections this process opened to the sshd: none.
 */

const lab = useFleetHosts(12);
const all = () => lab.fleet.names();

async function run(
  p: FleetProject,
  o: { confirmed?: boolean; ignoreWindow?: boolean; targets?: string[] } = {},
): Promise<{ report: Report; maxSockets: number }> {
  // The previous run's connections may still be finishing their close handshake: they are not this run's.
  expect(await lab.fleet.idle(5000)).toBe(0);
  let maxSockets = 0;
  const sample = () => void (maxSockets = Math.max(maxSockets, lab.fleet.clientSockets()));
  const ticker = setInterval(sample, 5);
  try {
    const report = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env: process.env,
      redactor: new Redactor(),
      confirmed: o.confirmed,
      ignoreWindow: o.ignoreWindow,
      targets: o.targets,
      onEvent: sample,
    });
    return { report, maxSockets };
  } finally {
    clearInterval(ticker);
  }
}

const hhmm = (minuteOfDay: number) => {
  const m = ((minuteOfDay % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
};
const utcMinute = (t: number) => Math.floor(t / 60_000) % 1440;

/** A window of every day that opens two hours from now and closes an hour later: closed now, whatever the time. */
function closedWindow(): Record<string, unknown> {
  const now = utcMinute(Date.now());
  return { days: ['mon-sun'], from: hhmm(now + 120), to: hhmm(now + 180), tz: 'UTC' };
}

const stage = (hosts: string[], extra: Record<string, unknown> = {}) => ({
  name: 'fleet',
  hosts,
  health: [HEALTH_CHECK],
  ...extra,
});
const spec = (extra: Partial<FleetSpec> = {}): FleetSpec => ({
  targets: all(),
  stages: [stage(all())],
  ...extra,
});

function expectUntouched(
  p: FleetProject,
  names: string[],
  release: string,
  before: Record<string, string | null>,
) {
  expect(p.currents(names)).toEqual(Object.fromEntries(names.map((n) => [n, before[n]])));
  for (const n of names) expect([n, p.hasRelease(n, release)]).toEqual([n, false]);
}

describe('deploy windows', () => {
  let p: FleetProject;
  beforeAll(async () => {
    p = lab.project();
    const v1 = p.release(spec());
    expect((await run(p)).report.status).toBe('success');
    expect(new Set(Object.values(p.currents(all())))).toEqual(new Set([v1]));
  }, 60_000);

  it('outside the window the run refuses before connecting to any host', async () => {
    const before = p.currents(all());
    const audit = all().map((n) => p.auditLog(n));
    const window = closedWindow();
    const v = p.release(spec({ extra: { window } }));
    const { report, maxSockets } = await run(p);

    expect(report.status).toBe('aborted');
    expect(report.error?.class).toBe('precondition');
    expect(report.error?.message).toContain(
      `outside the deploy window (mon-sun ${window.from}-${window.to} UTC)`,
    );
    expect(report.error?.message).toContain('Nothing was touched');
    expect(maxSockets).toBe(0);
    expectUntouched(p, all(), v, before);
    expect(all().map((n) => p.auditLog(n))).toEqual(audit);
  });

  it('--ignore-window deploys anyway, and the report audits it', async () => {
    const v = p.release(spec({ extra: { window: closedWindow() } }));
    const { report } = await run(p, { ignoreWindow: true });

    expect(report.status).toBe('success');
    expect(p.currents(all())).toEqual(Object.fromEntries(all().map((n) => [n, v])));
    const ignored = report.audit.filter((a) => a.action === 'window-ignored');
    expect(ignored).toHaveLength(1);
    expect(ignored[0].detail).toMatch(/^deployed outside the window mon-sun /);
  });

  it('a wave that would start after the window closed is not started: its targets are left for the next window', async () => {
    // The window closes at a minute boundary at least 15 s away (time for the gate and the canary), and the pause
    // after the canary lasts past it.
    const now = Date.now();
    let closes = Math.ceil((now + 1) / 60_000) * 60_000;
    if (closes - now < 15_000) closes += 60_000;
    const window = {
      days: ['mon-sun'],
      from: hhmm(utcMinute(closes) - 120),
      to: hhmm(utcMinute(closes)),
      tz: 'UTC',
    };
    const pause = `${closes - now + 2000}ms`;
    const before = p.currents(all());
    const v = p.release(
      spec({
        stages: [stage(all(), { rollout: { waves: [1, '100%'], pause } })],
        extra: { window },
      }),
    );
    const { report } = await run(p);

    expect(report.status).toBe('partial_success');
    expect(report.waves?.map((w) => [w.index, w.ok, w.failed])).toEqual([[1, 1, 0]]);
    expect(p.current('h001')).toBe(v);
    expectUntouched(p, all().slice(1), v, before);
    expect(report.left?.targets).toEqual(all().slice(1));
    expect(report.left?.reason).toBe(
      `the deploy window (mon-sun ${window.from}-${window.to} UTC) closed before wave 2 of 2`,
    );
    expect(report.error).toMatchObject({ class: 'precondition', phase: 'fleet' });
  }, 150_000);
});

describe('the human checkpoint', () => {
  let p: FleetProject;
  beforeAll(async () => {
    p = lab.project();
    p.release(spec());
    expect((await run(p)).report.status).toBe('success');
  }, 60_000);

  it('a run above checkpoint.above refuses without a confirmation, touching nothing; confirmed, it deploys', async () => {
    const before = p.currents(all());
    const audit = all().map((n) => p.auditLog(n));
    const v = p.release(spec({ extra: { checkpoint: { above: 5 } } }));
    const refused = await run(p);

    expect(refused.report.status).toBe('aborted');
    expect(refused.report.error?.class).toBe('precondition');
    expect(refused.report.error?.message).toContain(
      'would deploy to 12 targets, more than checkpoint.above (5)',
    );
    expect(refused.maxSockets).toBe(0);
    expectUntouched(p, all(), v, before);
    expect(all().map((n) => p.auditLog(n))).toEqual(audit);

    // Five targets are not above the checkpoint: no confirmation needed.
    const few = all().slice(0, 5);
    expect((await run(p, { targets: few })).report.status).toBe('success');
    expect(p.currents(all())).toEqual(
      Object.fromEntries(all().map((n) => [n, few.includes(n) ? v : before[n]])),
    );

    const confirmed = await run(p, { confirmed: true });
    expect(confirmed.report.status).toBe('success');
    expect(p.currents(all())).toEqual(Object.fromEntries(all().map((n) => [n, v])));
  }, 60_000);
});

describe('label selection', () => {
  const region = (n: string) => (Number(n.slice(1)) % 2 ? 'eu' : 'us');
  const tier = (n: string) => (Number(n.slice(1)) <= 6 ? 'web' : 'db');
  const labels = () => Object.fromEntries(all().map((n) => [n, { region: region(n), tier: tier(n) }]));
  const stages = [
    { name: 'eu', hosts: ['region=eu'], health: [HEALTH_CHECK] },
    { name: 'us', hosts: ['region=us'], health: [HEALTH_CHECK] },
  ];

  it('stages and --targets select hosts by labels', async () => {
    const p = lab.project();
    const eu = all().filter((n) => region(n) === 'eu');
    const us = all().filter((n) => region(n) === 'us');
    const v1 = p.release({ targets: all(), labels: labels(), stages });
    const first = await run(p);
    expect(first.report.status).toBe('success');
    expect(first.report.phases.find((x) => x.name === 'eu')?.hosts.map((h) => h.host)).toEqual(eu);
    expect(first.report.phases.find((x) => x.name === 'us')?.hosts.map((h) => h.host)).toEqual(us);
    expect(p.currents(all())).toEqual(Object.fromEntries(all().map((n) => [n, v1])));

    const v2 = p.release({ targets: all(), labels: labels(), stages });
    const euOnly = await run(p, { targets: ['region=eu'] });
    expect(euOnly.report.status).toBe('success');
    expect(euOnly.report.phases.map((x) => x.name)).not.toContain('us');
    expect(p.currents(all())).toEqual(
      Object.fromEntries(all().map((n) => [n, region(n) === 'eu' ? v2 : v1])),
    );
    for (const n of us) expect(p.hasRelease(n, v2)).toBe(false);

    const v3 = p.release({ targets: all(), labels: labels(), stages });
    const usWeb = await run(p, { targets: ['region=us,tier=web'] });
    expect(usWeb.report.status).toBe('success');
    expect(usWeb.report.hosts.map((h) => h.host)).toEqual(['h002', 'h004', 'h006']);
    expect(p.currents(all())).toEqual(
      Object.fromEntries(
        all().map((n) => [n, region(n) === 'us' && tier(n) === 'web' ? v3 : region(n) === 'eu' ? v2 : v1]),
      ),
    );
  }, 60_000);
});
