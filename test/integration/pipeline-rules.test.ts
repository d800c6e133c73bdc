import * as fs from 'node:fs';
import * as path from 'node:path';
import { deploy } from '../../src/engine';
import { releaseIdFor } from '../../src/run/release';
import type { DeployEvent } from '../../src/run/events';
import type { Report } from '../../src/report/types';
import { Redactor } from '../../src/secrets/redact';
import { useHomelab, type Project } from '../fixtures/pipeline';

const SECRET = 'sup3r-s3cret-$value with spaces';
const env = { ...process.env, HD_TEST_SECRET: SECRET };

const lab = useHomelab();

async function run(
  p: Project,
  opts: { onEvent?: (e: DeployEvent) => void; phase?: string } = {},
): Promise<{ report: Report; events: DeployEvent[] }> {
  const events: DeployEvent[] = [];
  const report = await deploy({
    configPath: p.configPath,
    phase: opts.phase ?? 'all',
    ref: 'HEAD',
    env,
    redactor: new Redactor(),
    onEvent: (e) => {
      events.push(e);
      opts.onEvent?.(e);
    },
  });
  // Secrets must appear nowhere: not in events, not in the report.
  expect(JSON.stringify(events)).not.toContain(SECRET);
  expect(JSON.stringify(report)).not.toContain(SECRET);
  return { report, events };
}

/** A project where v1 is live on every host, and the SHA of a committed v2. */
async function v1Live(): Promise<{ p: Project; v1: string; v2: string }> {
  const p = await lab.project();
  const { report } = await run(p);
  expect(report.status).toBe('success');
  const v1 = report.release.id;
  const v2 = releaseIdFor(p.commit('v2'));
  return { p, v1, v2 };
}

function expectNoLocks(p: Project): void {
  for (const h of Object.keys(p.paths))
    expect(fs.existsSync(path.join(p.paths[h], '.homelab-deploy', 'lock'))).toBe(false);
}

describe("failure rules of seed 001, proven by each host's actual release", () => {
  it('success: every host runs v2, services answer with it, env file 0600 holds the secret', async () => {
    const { p, v2 } = await v1Live();
    const { report } = await run(p);
    expect(report.status).toBe('success');
    expect(report.systemsDeployed).toEqual(['thinkpad', 'rtx1080', 'vps']);
    for (const h of ['thinkpad', 'rtx1080', 'vps']) {
      expect(p.current(h)).toBe(v2);
      expect(await p.health(h)).toEqual({ status: 200, release: v2 });
      const envFile = path.join(p.paths[h], 'shared', '.env');
      expect(fs.statSync(envFile).mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(envFile, 'utf8')).toContain(`HD_TEST_SECRET='${SECRET}'`);
    }
    expect(report.phases.map((x) => `${x.name}:${x.status}`)).toEqual([
      'preflight:ok',
      'secrets:ok',
      'snapshot:ok',
      'staging:ok',
      'production:ok',
      'public:ok',
      'verify:ok',
    ]);
    expect(report.phases.find((x) => x.name === 'staging')?.tests?.ok).toBe(true);
    // The stack printed its secret while starting (as apps do); the report keeps that output, masked.
    for (const phase of ['staging', 'production', 'public']) {
      const up = report.phases.find((x) => x.name === phase)?.hosts[0].steps.find((s) => s.name === 'up');
      expect(up?.output).toContain("up: loaded HD_TEST_SECRET='***'");
    }
    expectNoLocks(p);
    const log = fs
      .readFileSync(path.join(p.paths.vps, '.homelab-deploy', 'releases.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.filter((l) => l.release === v2).map((l) => l.result)).toEqual(['started', 'deployed']);
  });

  it('staging fails → staging rolled back, failed, production untouched', async () => {
    const { p, v1, v2 } = await v1Live();
    p.fault('thinkpad', v2);
    const { report } = await run(p);
    expect(report.status).toBe('failed');
    expect(report.phase).toBe('staging');
    expect(report.error?.class).toBe('health-failed');
    expect(report.error?.message).toContain('expected status 200, got 503');
    expect(p.current('thinkpad')).toBe(v1);
    expect(p.current('rtx1080')).toBe(v1);
    expect(p.current('vps')).toBe(v1);
    expect((await p.health('thinkpad')).release).toBe(v1);
    expect(report.systemsDeployed).toEqual([]);
    expect(report.hosts.find((h) => h.host === 'thinkpad')).toMatchObject({
      before: v1,
      after: v1,
      state: 'previous',
      rollback: { ok: true, to: v1 },
    });
    expectNoLocks(p);
  });

  it('tests fail → staging rolled back, failed, production untouched', async () => {
    const { p, v1 } = await v1Live();
    p.fault('thinkpad', 'x', 'FAULT-TESTS');
    const { report } = await run(p);
    expect(report.status).toBe('failed');
    expect(report.error?.class).toBe('tests-failed');
    const staging = report.phases.find((x) => x.name === 'staging');
    expect(staging?.tests).toMatchObject({ ok: false, exitCode: 1 });
    expect(staging?.tests?.outputTail).toContain('FAULT-TESTS present');
    expect(report.phases.some((x) => x.name === 'production')).toBe(false);
    expect([p.current('thinkpad'), p.current('rtx1080'), p.current('vps')]).toEqual([v1, v1, v1]);
  });

  it('production fails → staging and production rolled back, rolled_back', async () => {
    const { p, v1, v2 } = await v1Live();
    p.fault('rtx1080', v2);
    const { report } = await run(p);
    expect(report.status).toBe('rolled_back');
    expect(report.phase).toBe('production');
    expect([p.current('thinkpad'), p.current('rtx1080'), p.current('vps')]).toEqual([v1, v1, v1]);
    expect((await p.health('rtx1080')).release).toBe(v1);
    expect((await p.health('thinkpad')).release).toBe(v1);
    const rolled = report.hosts
      .filter((h) => h.rollback?.ok)
      .map((h) => h.host)
      .sort();
    expect(rolled).toEqual(['rtx1080', 'thinkpad']);
    expectNoLocks(p);
  });

  it('VPS fails after 3 attempts with backoff → only the VPS rolled back, partial_success', async () => {
    const { p, v1, v2 } = await v1Live();
    p.fault('vps', v2);
    const { report, events } = await run(p);
    expect(report.status).toBe('partial_success');
    expect([p.current('thinkpad'), p.current('rtx1080'), p.current('vps')]).toEqual([v2, v2, v1]);
    expect((await p.health('rtx1080')).release).toBe(v2);
    expect((await p.health('vps')).release).toBe(v1);
    expect(report.systemsDeployed).toEqual(['thinkpad', 'rtx1080']);
    const vps = report.phases.find((x) => x.name === 'public')?.hosts[0];
    expect(vps?.attempts.map((a) => a.ok)).toEqual([false, false, false]);
    expect(vps?.attempts[1].delayBeforeMs).toBeGreaterThanOrEqual(160);
    expect(vps?.attempts[2].delayBeforeMs).toBeGreaterThanOrEqual(320);
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(2);
    expect(report.phases.find((x) => x.name === 'verify')?.status).toBe('ok');
  });

  it('verify fails → every host rolled back, rolled_back', async () => {
    const { p, v1, v2 } = await v1Live();
    const { report } = await run(p, {
      onEvent: (e) => {
        if (e.type === 'phase-start' && e.phase === 'verify') p.fault('rtx1080', v2);
      },
    });
    expect(report.status).toBe('rolled_back');
    expect(report.phase).toBe('verify');
    expect(report.error?.message).toContain('rtx1080');
    expect([p.current('thinkpad'), p.current('rtx1080'), p.current('vps')]).toEqual([v1, v1, v1]);
    for (const h of ['thinkpad', 'rtx1080', 'vps']) expect((await p.health(h)).release).toBe(v1);
  });

  it('pre-flight fails (disk below threshold) → aborted, nothing changed', async () => {
    const { p, v1 } = await v1Live();
    fs.writeFileSync(
      p.configPath,
      fs.readFileSync(p.configPath, 'utf8').replace('min_free_disk: 1MB', 'min_free_disk: 1000TB'),
    );
    const { report } = await run(p);
    expect(report.status).toBe('aborted');
    expect(report.phase).toBe('preflight');
    expect(report.error?.class).toBe('precondition');
    expect(report.error?.message).toMatch(/need 1000\.0TB/);
    expect([p.current('thinkpad'), p.current('rtx1080'), p.current('vps')]).toEqual([v1, v1, v1]);
    expectNoLocks(p);
  });

  it('secrets fail (missing value) → aborted before any host is touched', async () => {
    const p = await lab.project();
    const report = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env: { ...process.env, HD_TEST_SECRET: '' },
      redactor: new Redactor(),
    });
    expect(report.status).toBe('aborted');
    expect(report.error?.message).toContain('HD_TEST_SECRET');
    for (const h of Object.keys(p.paths)) expect(fs.existsSync(p.paths[h])).toBe(false);
  });

  it('snapshot fails → aborted, env files restored, nothing deployed', async () => {
    const { p, v1 } = await v1Live();
    const before = fs.readFileSync(path.join(p.paths.vps, 'shared', '.env'));
    // A directory where the rollback-point file must go makes the snapshot step fail on the vps only.
    const v2 = releaseIdFor(p.commit('v2b'));
    fs.mkdirSync(path.join(p.paths.vps, '.homelab-deploy', `rollback-point-${v2}.json.tmp`));
    const report = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env: { ...env, HD_TEST_SECRET: 'rotated-value' },
      redactor: new Redactor(),
    });
    expect(report.status).toBe('aborted');
    expect(report.phase).toBe('snapshot');
    expect([p.current('thinkpad'), p.current('rtx1080'), p.current('vps')]).toEqual([v1, v1, v1]);
    expect(fs.readFileSync(path.join(p.paths.vps, 'shared', '.env'))).toEqual(before);
    expect(fs.readFileSync(path.join(p.paths.thinkpad, 'shared', '.env'), 'utf8')).toContain(SECRET);
    expectNoLocks(p);
  });
});
