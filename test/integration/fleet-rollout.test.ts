import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { deploy, prepare } from '../../src/engine';
import { renderSummary } from '../../src/report/summary';
import { renderReportText } from '../../src/report/text';
import type { Report } from '../../src/report/types';
import type { DeployEvent } from '../../src/run/events';
import { Redactor } from '../../src/secrets/redact';
import { HEALTH_CHECK, useFleetHosts, type FleetProject, type FleetSpec } from '../helpers/fleet-hosts';

/**
 * Fleet rollouts through deploy() against 61 loopback hosts on one real sshd, some made to fail (nothing listening
 * on their port, an up that refuses the release, a health check that fails). Every outcome is checked on each
 * host's own `current`, read from its folder, not only in the report.
 */

const lab = useFleetHosts(61);
/** Waves of 1, 20, 20, 20: wave n holds h(2+20(n-2))..h(21+20(n-2)); a wave of 20 tolerates one failure at 5 %. */
const WAVES = [1, 20, 20, 20];
const wave = (n: number) =>
  lab.fleet.names().slice(n === 1 ? 0 : 1 + 20 * (n - 2), n === 1 ? 1 : 21 + 20 * (n - 2));

interface Run {
  report: Report;
  events: DeployEvent[];
  /** Most TCP connections this process had open to the sshd at once while the run went. */
  maxSockets: number;
  maxFds: number;
}

async function run(
  p: FleetProject,
  o: {
    confirmed?: boolean;
    env?: NodeJS.ProcessEnv;
    targets?: string[];
    onEvent?: (e: DeployEvent) => void;
  } = {},
): Promise<Run> {
  // The previous run's connections may still be finishing their close handshake: they are not this run's.
  expect(await lab.fleet.idle(5000)).toBe(0);
  const events: DeployEvent[] = [];
  let maxSockets = 0;
  let maxFds = 0;
  const sample = () => {
    maxSockets = Math.max(maxSockets, lab.fleet.clientSockets());
    maxFds = Math.max(maxFds, lab.fleet.openFds());
  };
  const ticker = setInterval(sample, 5);
  try {
    const report = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env: o.env ?? process.env,
      redactor: new Redactor(),
      confirmed: o.confirmed ?? true,
      targets: o.targets,
      onEvent: (e) => {
        events.push(e);
        sample();
        o.onEvent?.(e);
      },
    });
    return { report, events, maxSockets, maxFds };
  } finally {
    clearInterval(ticker);
  }
}

const all = () => lab.fleet.names();
const rollout = (extra: Record<string, unknown> = {}) => ({
  name: 'fleet',
  hosts: all(),
  health: [HEALTH_CHECK],
  rollout: { waves: WAVES, max_fail_percentage: 5, ...extra },
});
const spec = (extra: Partial<FleetSpec> = {}): FleetSpec => ({
  targets: all(),
  parallel: 20,
  stages: [rollout()],
  ...extra,
});

/** Where each host is now, against what it ran before: the new release, or untouched (still `before`). */
function expectOn(p: FleetProject, names: string[], release: string): void {
  expect(p.currents(names)).toEqual(Object.fromEntries(names.map((n) => [n, release])));
}
function expectBack(p: FleetProject, names: string[], before: Record<string, string | null>): void {
  expect(p.currents(names)).toEqual(Object.fromEntries(names.map((n) => [n, before[n]])));
}
function expectUntouched(
  p: FleetProject,
  names: string[],
  release: string,
  audit: Record<string, string>,
): void {
  for (const n of names) {
    expect([n, p.hasRelease(n, release)]).toEqual([n, false]);
    expect([n, p.auditLog(n)]).toEqual([n, audit[n]]);
  }
}
const audits = (p: FleetProject) => Object.fromEntries(all().map((n) => [n, p.auditLog(n)]));
const minus = (a: string[], b: string[]) => a.filter((x) => !b.includes(x));

/** A local stand-in for a generic JSON webhook: records every request and answers 200. */
interface Hook {
  url: string;
  requests: { headers: http.IncomingHttpHeaders; body: Record<string, unknown> }[];
  close(): Promise<void>;
}
async function startHook(): Promise<Hook> {
  const requests: Hook['requests'] = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: JSON.parse(body) as Record<string, unknown> });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/deploy`,
    requests,
    close: () => new Promise((r) => srv.close(() => r())),
  };
}

let p: FleetProject;

beforeAll(async () => {
  // Every host runs a first release, so each later run has something to roll back to.
  p = lab.project();
  const v1 = p.release(spec());
  const { report } = await run(p);
  expect(report.status).toBe('success');
  expectOn(p, all(), v1);
}, 120_000);

describe('waves and the failure budget', () => {
  it('a bad release stops on the canary: only the canary was touched, and it is back on its release', async () => {
    const before = p.currents(all());
    const audit = audits(p);
    const bad = p.release(spec(), { broken: true });
    const { report } = await run(p);

    expect(report.status).toBe('failed');
    expect(report.waves).toHaveLength(1);
    expect(report.waves?.[0]).toMatchObject({ index: 1, targets: ['h001'], ok: 0, failed: 1 });
    expect(report.waves?.[0].budget).toMatchObject({ exceeded: true, scope: 'wave' });
    expect(report.waves?.[0].budget?.decision).toMatch(/canary wave failed/);
    // The canary got the release, failed its check and was rolled back; no other host was even connected to.
    expect(p.hasRelease('h001', bad)).toBe(true);
    expectBack(p, all(), before);
    expectUntouched(p, all().slice(1), bad, audit);
    expect(report.left?.targets).toEqual(all().slice(1));
    expect(report.hosts.find((h) => h.host === 'h001')).toMatchObject({
      state: 'previous',
      after: before.h001,
    });
  }, 120_000);

  it('a soak catches a canary that degrades after its wave: it is rolled back and the next wave never starts', async () => {
    const before = p.currents(all());
    const audit = audits(p);
    const v = p.release(spec({ stages: [rollout({ soak: '200ms' })] }));
    // The canary passed its checks; it turns sick once its wave is over, before the soak looks again.
    const { report } = await run(p, {
      onEvent: (e) => {
        if (e.type === 'wave-end' && e.wave === 1) p.failHealth('h001', v);
      },
    });

    expect(report.status).toBe('failed');
    expect(report.waves?.map((w) => [w.index, w.ok, w.failed])).toEqual([[1, 0, 1]]);
    expect(report.waves?.[0].budget).toMatchObject({ exceeded: true, scope: 'wave', failRate: 1 });
    expect(report.waves?.[0].budget?.decision).toBe(
      'the soak after wave 1: the canary wave failed (1 of 1 target)',
    );
    expect(report.hosts.find((h) => h.host === 'h001')).toMatchObject({
      state: 'previous',
      rollback: { ok: true },
    });
    expectBack(p, all(), before);
    expectUntouched(p, all().slice(1), v, audit);
    expect(report.left?.targets).toEqual(all().slice(1));
    expect(report.escalation).toMatchObject({
      wave: 1,
      classes: { 'health-failed': 1 },
      firstFailing: ['h001'],
    });
  }, 120_000);

  it('rollback-failed: passing 5 % in wave 3 stops there; only failed targets go back, wave 4 is untouched; escalation sent', async () => {
    const hook = await startHook();
    try {
      const before = p.currents(all());
      const audit = audits(p);
      const v = p.release(
        spec({
          stages: [rollout({ on_budget_exceeded: 'rollback-failed' })],
          extra: { notify: { webhook: { url_env: 'HD_FLEET_WEBHOOK' } } },
        }),
      );
      // Wave 2: one failure, within its budget (1 of 20). Wave 3: two, past it.
      p.failUp('h010', v);
      p.failHealth('h030', v);
      p.failUp('h035', v);
      const failed = ['h010', 'h030', 'h035'];
      const { report } = await run(p, { env: { ...process.env, HD_FLEET_WEBHOOK: hook.url } });

      expect(report.status).toBe('failed');
      expect(report.waves?.map((w) => [w.index, w.ok, w.failed, w.budget?.exceeded])).toEqual([
        [1, 1, 0, false],
        [2, 19, 1, false],
        [3, 18, 2, true],
      ]);
      expect(report.waves?.[2].budget).toMatchObject({ scope: 'wave', policy: 'rollback-failed' });
      expectOn(p, minus([...wave(1), ...wave(2), ...wave(3)], failed), v);
      expectBack(p, [...failed, ...wave(4)], before);
      expectUntouched(p, wave(4), v, audit);
      expect(report.left?.targets).toEqual(wave(4));
      expect(report.waves?.[2].left).toEqual(wave(4));

      // The escalation: the report says where it went, and the stand-in got it with rate, classes and targets.
      expect(report.escalation).toMatchObject({
        stage: 'fleet',
        wave: 3,
        sent: true,
        channels: ['webhook'],
        classes: { 'command-failed': 2, 'health-failed': 1 },
      });
      expect(report.escalation?.rate).toBeCloseTo(3 / 41, 5);
      expect([...(report.escalation?.firstFailing ?? [])].sort()).toEqual(failed);
      const esc = hook.requests.filter((r) => r.headers['x-homelab-deploy-event'] === 'escalation');
      expect(esc).toHaveLength(1);
      const body = esc[0].body as { summary: string; error: string; hosts: { host: string }[] };
      expect(body.summary).toContain('fleet, wave 3');
      expect(body.summary).toContain('7.3%');
      expect(body.error).toBe('failures by class: command-failed 2, health-failed 1');
      expect(body.hosts.map((h) => h.host).sort()).toEqual(failed);
      // The run's final message went out too, after the escalation.
      expect(hook.requests.map((r) => r.headers['x-homelab-deploy-event'])).toEqual([
        'started',
        'escalation',
        'failed',
      ]);

      const summary = renderSummary(report);
      expect(summary.split('\n').slice(0, 2).join('\n')).toMatch(
        /^> \[!CAUTION\]\n> \*\*ESCALATION:\*\* .*wave 3/,
      );
      expect(renderReportText(report).trim().split('\n')[1]).toContain('ESCALATION');
    } finally {
      await hook.close();
    }
  }, 120_000);

  it('rollback-wave: the whole stopping wave goes back, earlier waves stay new, wave 4 is untouched', async () => {
    const before = p.currents(all());
    const audit = audits(p);
    const v = p.release(spec({ stages: [rollout({ on_budget_exceeded: 'rollback-wave' })] }));
    p.failUp('h010', v);
    p.failHealth('h030', v);
    p.failUp('h035', v);
    const { report } = await run(p);

    expect(report.status).toBe('failed');
    expect(report.waves?.map((w) => [w.index, w.ok, w.failed])).toEqual([
      [1, 1, 0],
      [2, 19, 1],
      [3, 18, 2],
    ]);
    expectOn(p, minus([...wave(1), ...wave(2)], ['h010']), v);
    expectBack(p, ['h010', ...wave(3), ...wave(4)], before);
    expectUntouched(p, wave(4), v, audit);
    const rolledBack = report.hosts.filter((h) => h.rollback?.ok).map((h) => h.host);
    expect(rolledBack.sort()).toEqual(['h010', ...wave(3)].sort());
  }, 120_000);

  it('rollback-all: everything this run changed goes back; wave 4 is untouched', async () => {
    const before = p.currents(all());
    const audit = audits(p);
    const v = p.release(spec({ stages: [rollout({ on_budget_exceeded: 'rollback-all' })] }));
    p.failUp('h010', v);
    p.failHealth('h030', v);
    p.failUp('h035', v);
    const { report } = await run(p);

    expect(report.status).toBe('failed');
    expect(report.waves?.map((w) => w.index)).toEqual([1, 2, 3]);
    expectBack(p, all(), before);
    expectUntouched(p, wave(4), v, audit);
    expect(report.systemsDeployed).toEqual([]);
    expect(report.hosts.filter((h) => h.state === 'new')).toEqual([]);
  }, 120_000);

  it('failures within the budget: partial_success, every failed target listed and grouped by class', async () => {
    const before = p.currents(all());
    // One failure in each of waves 2, 3 and 4: 3 of 61 overall, one of 20 per wave, all within 5 %.
    const v = p.release(spec({ unreachable: ['h015'] }));
    p.failUp('h030', v);
    p.failHealth('h050', v);
    const failed = ['h015', 'h030', 'h050'];
    const { report } = await run(p);

    expect(report.status).toBe('partial_success');
    expectOn(p, minus(all(), failed), v);
    expectBack(p, failed, before);
    expect(p.hasRelease('h015', v)).toBe(false);
    expect(report.escalation).toBeUndefined();
    expect(report.left).toBeUndefined();
    expect(report.waves?.map((w) => [w.index, w.ok, w.failed, w.budget?.exceeded])).toEqual([
      [1, 1, 0, false],
      [2, 19, 1, false],
      [3, 19, 1, false],
      [4, 19, 1, false],
    ]);
    expect(report.error?.phase).toBe('fleet');
    expect(report.error?.message).toMatch(/^3 of 61 targets of fleet failed \(within the failure budget\): /);
    for (const h of failed) expect(report.error?.message).toContain(h);

    const stage = report.phases.find((x) => x.name === 'fleet');
    const errorOf = (h: string) => stage?.hosts.find((x) => x.host === h)?.error;
    expect(errorOf('h015')).toMatchObject({ class: 'unreachable', host: 'h015' });
    expect(errorOf('h030')).toMatchObject({ class: 'command-failed', host: 'h030' });
    expect(errorOf('h030')?.message).toContain('up refused here');
    expect(errorOf('h050')).toMatchObject({ class: 'health-failed', host: 'h050' });
    expect(
      stage?.hosts
        .filter((x) => !x.ok)
        .map((x) => x.host)
        .sort(),
    ).toEqual(failed);
    for (const h of ['h030', 'h050'])
      expect(report.hosts.find((x) => x.host === h)).toMatchObject({
        state: 'previous',
        rollback: { ok: true },
      });
    // The run never read what h015 runs, so the report does not guess; its folder shows it kept its release.
    expect(report.hosts.find((x) => x.host === 'h015')).toMatchObject({ state: 'unknown', after: null });
    // Never reached, so never changed: it is listed as failed (unreachable), but nothing waits for a human.
    expect(report.needsAttention).toBeUndefined();

    const text = renderReportText(report);
    expect(text).toContain('PARTIAL_SUCCESS');
    expect(text).toContain('failed [unreachable] 1: h015');
    expect(text).toContain('failed [command-failed] 1: h030');
    expect(text).toContain('failed [health-failed] 1: h050');
    const summary = renderSummary(report);
    expect(summary).toContain('### Failures by class');
    expect(summary).toMatch(/\| unreachable \| 1 \| h015 \|/);
    expect(summary).toMatch(/\| command-failed \| 1 \| h030 \|/);
    expect(summary).toMatch(/\| health-failed \| 1 \| h050 \|/);
    expect(summary).toMatch(/\| fleet \| 4 \| 20 \| 19 \| 1 \| 0 \|/);
  }, 120_000);
});

describe('wave sizes', () => {
  it('a percentage is of the stage, rounded up only when it is not whole: 28 % of 25 targets is 7', async () => {
    const q = lab.project('shares');
    const names = all().slice(0, 25);
    q.release({
      targets: names,
      stages: [
        { name: 'fleet', hosts: names, health: [HEALTH_CHECK], rollout: { waves: [1, '28%', '100%'] } },
      ],
    });
    const { plan } = prepare(q.configPath, 'all');
    expect(plan.phases.find((x) => x.name === 'fleet')?.waves?.map((w) => w.length)).toEqual([1, 7, 17]);
    const { report } = await run(q);
    expect(report.status).toBe('success');
    expect(report.waves?.map((w) => w.targets)).toEqual([
      names.slice(0, 1),
      names.slice(1, 8),
      names.slice(8),
    ]);
  }, 120_000);
});

describe('implicit fleets and the small-config pre-flight', () => {
  it('a stage of more than 50 targets without `rollout:` goes canary first; one unreachable target only counts against the budget', async () => {
    const before = p.currents(all());
    const v = p.release({
      targets: all(),
      parallel: 20,
      unreachable: ['h040'],
      stages: [{ name: 'fleet', hosts: all(), health: [HEALTH_CHECK] }],
    });
    const { report, events } = await run(p);

    expect(report.status).toBe('partial_success');
    expect(report.waves?.map((w) => [w.index, w.targets.length, w.ok, w.failed])).toEqual([
      [1, 1, 1, 0],
      [2, 60, 59, 1],
    ]);
    expect(report.waves?.[0].targets).toEqual(['h001']);
    // The canary is done before any other target of the stage starts.
    const stageEvents = events.filter(
      (e): e is Extract<DeployEvent, { host: string }> =>
        'host' in e && (e as { phase?: string }).phase === 'fleet',
    );
    const lastCanary = stageEvents.map((e) => e.host).lastIndexOf('h001');
    const firstOther = stageEvents.findIndex((e) => e.host !== 'h001');
    expect(lastCanary).toBeGreaterThanOrEqual(0);
    expect(firstOther).toBeGreaterThan(lastCanary);
    expect(events.findIndex((e) => e.type === 'wave-start' && e.wave === 2)).toBeGreaterThan(
      events.findIndex((e) => e.type === 'wave-end' && e.wave === 1),
    );

    expectOn(p, minus(all(), ['h040']), v);
    expectBack(p, ['h040'], before);
    expect(
      report.phases.find((x) => x.name === 'fleet')?.hosts.find((x) => x.host === 'h040')?.error?.class,
    ).toBe('unreachable');
  }, 120_000);

  it('a 3-target config without a rollout keeps the all-or-nothing pre-flight: one unreachable target aborts the run, nothing changes', async () => {
    const three = lab.project('homelab');
    const names = all().slice(0, 3);
    const stages = [{ name: 'prod', hosts: names, health: [HEALTH_CHECK] }];
    const v1 = three.release({ targets: names, stages });
    expect((await run(three)).report.status).toBe('success');
    expectOn(three, names, v1);

    const v2 = three.release({ targets: names, stages, unreachable: ['h002'] });
    const { report } = await run(three);
    expect(report.status).toBe('aborted');
    expect(report.phase).toBe('preflight');
    expect(report.error).toMatchObject({ class: 'unreachable', host: 'h002' });
    expect(report.waves).toBeUndefined();
    expectOn(three, names, v1);
    for (const n of names) expect(three.hasRelease(n, v2)).toBe(false);
  }, 120_000);
});

describe('bounded resources', () => {
  it('open connections stay within the stage parallel during a fleet run, and none is left after it', async () => {
    const parallel = 8;
    const fdsBefore = lab.fleet.openFds();
    const v = p.release(spec({ parallel, stages: [rollout({ on_budget_exceeded: 'rollback-failed' })] }));
    p.failHealth('h012', v);
    const { report, maxSockets, maxFds } = await run(p);

    expect(report.status).toBe('partial_success');
    expectOn(p, minus(all(), ['h012']), v);
    // Each target in flight holds one connection, and a target's slot goes to the next one only once its socket
    // is gone (not when it has said goodbye while the server is still tearing the session down).
    expect(maxSockets).toBeGreaterThan(0);
    expect(maxSockets).toBeLessThanOrEqual(parallel);
    expect(maxFds - fdsBefore).toBeLessThanOrEqual(parallel * 2 + 10);
    // deploy() has closed every connection; the last ones may still be finishing their close handshake.
    expect(await lab.fleet.idle(5000)).toBe(0);
  }, 120_000);

  it('also when the locks are kept to the end of the run (rollback-wave) and released by its cleanup', async () => {
    const parallel = 8;
    const v = p.release(spec({ parallel, stages: [rollout({ on_budget_exceeded: 'rollback-wave' })] }));
    const { report, maxSockets } = await run(p);

    expect(report.status).toBe('success');
    expectOn(p, all(), v);
    for (const n of all())
      expect([n, fs.existsSync(path.join(p.paths[n], '.homelab-deploy', 'lock'))]).toEqual([n, false]);
    expect(maxSockets).toBeLessThanOrEqual(parallel);
    expect(await lab.fleet.idle(5000)).toBe(0);
  }, 120_000);
});
