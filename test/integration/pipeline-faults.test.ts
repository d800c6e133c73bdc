import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { releaseLock, testContext } from '../helpers/targets';
import { releaseIdFor } from '../../src/run/release';
import { deploy } from '../../src/engine';
import type { DeployEvent } from '../../src/run/events';
import type { Report } from '../../src/report/types';
import { Redactor } from '../../src/secrets/redact';
import { HOSTS, useHomelab, type Project } from '../fixtures/pipeline';

/**
 * Faults the failure rules must survive: a host that drops mid-phase, a rollback that cannot succeed, a run
 * cancelled while a host is switching releases, and a pipeline split into jobs the way deploy.yml runs it. Every
 * claim is checked on the hosts themselves (their `current` link, their service, their lock directory).
 */

const SECRET = 'f4ult-s3cret $x';
const env = { ...process.env, HD_TEST_SECRET: SECRET };
const lab = useHomelab();

async function run(
  p: Project,
  o: { phase?: string; onEvent?: (e: DeployEvent) => void; signal?: AbortSignal; ref?: string } = {},
): Promise<Report> {
  const events: DeployEvent[] = [];
  const report = await deploy({
    configPath: p.configPath,
    phase: o.phase ?? 'all',
    ref: o.ref ?? 'HEAD',
    env,
    redactor: new Redactor(),
    signal: o.signal,
    onEvent: (e) => {
      events.push(e);
      o.onEvent?.(e);
    },
  });
  expect(JSON.stringify([report, events])).not.toContain(SECRET);
  return report;
}

const currents = (p: Project) => HOSTS.map((h) => p.current(h));
const lockHeld = (p: Project, h: string) => fs.existsSync(path.join(p.paths[h], '.homelab-deploy', 'lock'));
const releaseLog = (p: Project, h: string) =>
  fs
    .readFileSync(path.join(p.paths[h], '.homelab-deploy', 'releases.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** What the action's post step does for a killed run: release the lock by the run's token (read off the lock). */
async function postStepRelease(p: Project, host: string): Promise<boolean> {
  const owner = JSON.parse(
    fs.readFileSync(path.join(p.paths[host], '.homelab-deploy', 'lock', 'owner.json'), 'utf8'),
  ) as { token: string };
  const post = testContext(loadConfig(p.configPath), {
    runToken: owner.token,
    env,
    redactor: new Redactor(),
  });
  try {
    return await releaseLock(post, post.config.hosts[host]);
  } finally {
    await post.targets.closeAll();
  }
}

/** Kills a host's sshd and every session it serves: the host is gone mid-conversation, as on a power cut. */
function dropHost(name: string): void {
  const pid = lab.sandbox.host(name).pid;
  let sessions: string[] = [];
  try {
    sessions = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
  } catch {
    /* no sessions */
  }
  process.kill(pid, 'SIGKILL');
  for (const s of sessions) {
    try {
      process.kill(Number(s), 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

async function v1Live(config?: (c: string) => string): Promise<{ p: Project; v1: string; v2: string }> {
  const p = await lab.project({ config });
  const first = await run(p);
  expect(first.status).toBe('success');
  return { p, v1: first.release.id, v2: releaseIdFor(p.commit('v2')) };
}

describe('failure rules under faults', () => {
  it('a host that drops during verify: the others are rolled back, the dropped one is reported as unknown, ROLLBACK FAILED', async () => {
    // A verify check over SSH, so losing the host is an error inside verify, not a failed HTTP probe.
    const { p, v1, v2 } = await v1Live((c) =>
      c.replace(
        'stages:\n',
        'verify:\n  health:\n    - { name: ssh, command: "true", retries: 0 }\nstages:\n',
      ),
    );
    const report = await run(p, {
      onEvent: (e) => {
        if (e.type === 'phase-start' && e.phase === 'verify') dropHost('rtx1080');
      },
    });
    try {
      expect(report.phase).toBe('verify');
      expect(report.status).toBe('failed');
      expect(report.rollbackFailed).toBe(true);
      expect(report.error?.message).toMatch(/^ROLLBACK FAILED on rtx1080; verification failed on rtx1080/);
      expect(p.current('thinkpad')).toBe(v1);
      expect(p.current('vps')).toBe(v1);
      expect((await p.health('thinkpad')).release).toBe(v1);
      // The dropped host was never rolled back (it cannot be reached): the report does not pretend otherwise.
      expect(p.current('rtx1080')).toBe(v2);
      expect(report.hosts.find((h) => h.host === 'rtx1080')).toMatchObject({
        state: 'unknown',
        rollback: { ok: false, to: v1, error: { class: 'unreachable' } },
      });
      expect(report.hosts.find((h) => h.host === 'thinkpad')).toMatchObject({ after: v1, state: 'previous' });
      expect(lockHeld(p, 'thinkpad')).toBe(false);
      expect(lockHeld(p, 'vps')).toBe(false);
      // Its lock stays, so no other run deploys onto a host in a state nobody has looked at.
      expect(lockHeld(p, 'rtx1080')).toBe(true);
    } finally {
      await lab.sandbox.startHost('rtx1080');
    }
  });

  it('a rollback that cannot succeed (its target release was deleted) is reported with the real release', async () => {
    const { p, v1, v2 } = await v1Live();
    p.fault('rtx1080', v2);
    const report = await run(p, {
      onEvent: (e) => {
        // Production is failing its health checks: take away what it would roll back to.
        if (e.type === 'retry' || (e.type === 'host-end' && e.phase === 'production' && !e.ok))
          fs.rmSync(path.join(p.paths.rtx1080, 'releases', v1), { recursive: true, force: true });
      },
    });
    expect(report.status).toBe('failed');
    expect(report.rollbackFailed).toBe(true);
    expect(report.error?.message).toMatch(/^ROLLBACK FAILED on rtx1080/);
    const rtx = report.hosts.find((h) => h.host === 'rtx1080');
    expect(rtx?.rollback?.ok).toBe(false);
    expect(rtx?.rollback?.error?.message).toContain(`rollback target ${v1} is missing`);
    // Read back from the host, not from bookkeeping: rtx1080 still runs v2, staging is back on v1.
    expect(rtx).toMatchObject({ after: v2, state: 'new' });
    expect(p.current('rtx1080')).toBe(v2);
    expect(p.current('thinkpad')).toBe(v1);
    expect(report.systemsDeployed).toEqual(['rtx1080']);
    for (const h of HOSTS) expect(lockHeld(p, h)).toBe(false);
  });

  /** A fixture whose `up` sleeps for as many seconds as the release's SLOW-<id> file on the host says. */
  const slowUp = (c: string) =>
    c.replace(
      'up: sh ./up.sh',
      'up: "sh ./up.sh && if [ -f $HD_PATH/SLOW-$HD_RELEASE ]; then sleep $(cat $HD_PATH/SLOW-$HD_RELEASE); fi"',
    );

  /** Runs a deploy and cancels it as soon as `sleep <seconds>` runs on a host; returns when it was cancelled. */
  async function cancelWhenSleeping(
    p: Project,
    seconds: string,
  ): Promise<{ report: Report; abortedAt: number }> {
    const controller = new AbortController();
    let abortedAt = 0;
    const watch = setInterval(() => {
      if (!abortedAt && pgrep(`sleep ${seconds}`)) {
        abortedAt = Date.now();
        controller.abort();
      }
    }, 50);
    const report = await run(p, { signal: controller.signal }).finally(() => clearInterval(watch));
    expect(abortedAt).toBeGreaterThan(0);
    return { report, abortedAt };
  }

  it('cancelled while staging switches releases: rolled back within the budget, report matches the hosts', async () => {
    const secs = String(4800 + Math.floor(Math.random() * 99));
    const { p, v1, v2 } = await v1Live(slowUp);
    p.fault('thinkpad', secs, `SLOW-${v2}`);
    const { report, abortedAt } = await cancelWhenSleeping(p, secs);
    expect(Date.now() - abortedAt).toBeLessThan(7000);
    expect(report.error?.class).toBe('cancelled');
    expect(report.status).toBe('failed');
    expect(pgrep(`sleep ${secs}`)).toBe(false);
    // thinkpad had switched to v2 and was running its `up`: it is back on v1, serving v1, and says so.
    expect(p.current('thinkpad')).toBe(v1);
    expect((await p.health('thinkpad')).release).toBe(v1);
    expect(report.hosts.find((h) => h.host === 'thinkpad')).toMatchObject({
      after: v1,
      state: 'previous',
      rollback: { ok: true, to: v1, unverified: true },
    });
    expect(currents(p)).toEqual([v1, v1, v1]);
    for (const h of HOSTS) expect(lockHeld(p, h)).toBe(false);
    // The deploy attempt that was cut, the rollback, and the run's cancellation on a host it held.
    const log = releaseLog(p, 'thinkpad').filter((l) => l.release === v2);
    expect(log.map((l) => [l.event, l.result])).toEqual([
      ['deploy', 'started'],
      ['deploy', 'cancelled'],
      ['rollback', 'rolled_back'],
      ['cancelled', 'cancelled'],
    ]);
    expect(typeof log.find((l) => l.result === 'rolled_back')?.durationMs).toBe('number');
    // Both cancellations are in the host's audit log too, with the run's token.
    const audit = fs
      .readFileSync(path.join(p.paths.thinkpad, '.homelab-deploy', 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.release === v2 && l.action === 'cancelled');
    expect(audit).toHaveLength(2);
    expect(new Set(audit.map((l) => l.token)).size).toBe(1);
  });

  it('cancelled with a slow rollback: the host finishes it on its own, holding the lock until it is done', async () => {
    const secs = String(4900 + Math.floor(Math.random() * 99));
    const { p, v1, v2 } = await v1Live(slowUp);
    p.fault('thinkpad', secs, `SLOW-${v2}`);
    p.fault('thinkpad', '8.5', `SLOW-${v1}`); // starting v1 again takes longer than the cancellation budget
    const { report, abortedAt } = await cancelWhenSleeping(p, secs);
    expect(Date.now() - abortedAt).toBeLessThan(7000);
    expect(report.status).toBe('failed');
    expect(report.error?.message).toMatch(/^ROLLBACK STILL RUNNING on thinkpad \(handed over to the host\)/);
    const tp = report.hosts.find((h) => h.host === 'thinkpad');
    expect(tp?.rollback).toMatchObject({ ok: false, pending: true, to: v1 });
    expect(tp?.rollback?.error?.message).toContain('it releases the deploy lock when it ends');
    // The runner is gone; the host still holds the lock for the rollback it is running, and the action's post
    // step (releasing this run's locks by its token) leaves it alone while it runs.
    expect(lockHeld(p, 'thinkpad')).toBe(true);
    expect(await postStepRelease(p, 'thinkpad')).toBe(false);
    expect(lockHeld(p, 'thinkpad')).toBe(true);
    expect(lockHeld(p, 'rtx1080')).toBe(false);
    const deadline = Date.now() + 20_000;
    while (lockHeld(p, 'thinkpad') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(lockHeld(p, 'thinkpad')).toBe(false);
    expect(p.current('thinkpad')).toBe(v1);
    expect((await p.health('thinkpad')).release).toBe(v1);
    const rolled = releaseLog(p, 'thinkpad').find((l) => l.release === v2 && l.result === 'rolled_back');
    expect(Number(rolled?.durationMs)).toBeGreaterThanOrEqual(8000);
    const audit = fs
      .readFileSync(path.join(p.paths.thinkpad, '.homelab-deploy', 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; token?: string });
    expect(
      audit
        .filter((a) => a.token === rolled?.token)
        .map((a) => a.action)
        .slice(-2),
    ).toEqual(['rollback', 'lock-released']);
  }, 60_000);

  it('a run whose lock is taken away stops, and leaves the new owner’s lock alone', async () => {
    const secs = String(5000 + Math.floor(Math.random() * 99));
    const { p, v1, v2 } = await v1Live((c) =>
      slowUp(c).replace('hosts:\n', 'lock: { stale_after: 3s }\nhosts:\n'),
    );
    p.fault('thinkpad', secs, `SLOW-${v2}`);
    const lockDir = path.join(p.paths.thinkpad, '.homelab-deploy', 'lock');
    const intruder = JSON.stringify({
      token: 'intruder0001',
      actor: 'eve',
      commit: '0'.repeat(40),
      phase: 'x',
    });
    const watch = setInterval(() => {
      if (
        pgrep(`sleep ${secs}`) &&
        !fs.readFileSync(path.join(lockDir, 'owner.json'), 'utf8').includes('intruder')
      ) {
        // What an operator's forced release followed by another run's acquisition leaves on the host.
        fs.writeFileSync(path.join(lockDir, 'owner.json.new'), intruder + '\n');
        fs.renameSync(path.join(lockDir, 'owner.json.new'), path.join(lockDir, 'owner.json'));
      }
    }, 50);
    const report = await run(p).finally(() => clearInterval(watch));
    expect(report.error?.class).toBe('lock-held');
    expect(report.error?.message).toMatch(
      /^ROLLBACK FAILED on thinkpad; the deploy lock on thinkpad was taken away/,
    );
    expect(pgrep(`sleep ${secs}`)).toBe(false);
    // The intruder's lock is untouched; the hosts whose locks were ours are free again.
    expect(fs.readFileSync(path.join(lockDir, 'owner.json'), 'utf8')).toContain('intruder0001');
    expect(lockHeld(p, 'rtx1080')).toBe(false);
    expect(lockHeld(p, 'vps')).toBe(false);
    expect(p.current('rtx1080')).toBe(v1);
    expect(report.phases.some((x) => x.name === 'production')).toBe(false);
    // Nor does it roll back a host that is no longer its own: it says so instead of racing the new owner.
    expect(report.hosts.find((h) => h.host === 'thinkpad')?.rollback).toMatchObject({
      ok: false,
      error: { class: 'lock-held' },
    });
    expect(p.current('thinkpad')).toBe(v2);
  }, 60_000);

  it("deploy.yml's jobs one after another: a failure in the verify job rolls back what the earlier jobs deployed", async () => {
    const { p, v1, v2 } = await v1Live();
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: p.repo, encoding: 'utf8' }).trim();
    // Each job resolves the commit the first one handed on, as deploy.yml does, not the branch again.
    const staging = await run(p, { phase: 'preflight,secrets,snapshot,staging', ref: sha });
    expect(staging.status).toBe('success');
    expect(currents(p)).toEqual([v2, v1, v1]);
    expect((await run(p, { phase: 'production', ref: sha })).status).toBe('success');
    expect((await run(p, { phase: 'public', ref: sha })).status).toBe('success');
    expect(currents(p)).toEqual([v2, v2, v2]);

    p.fault('vps', v2);
    const verify = await run(p, { phase: 'verify', ref: sha });
    expect(verify.status).toBe('rolled_back');
    expect(verify.error?.message).toContain('vps');
    expect(currents(p)).toEqual([v1, v1, v1]);
    for (const h of HOSTS) {
      expect((await p.health(h)).release).toBe(v1);
      expect(verify.hosts.find((x) => x.host === h)).toMatchObject({
        before: v1,
        after: v1,
        rollback: { ok: true },
      });
      expect(lockHeld(p, h)).toBe(false);
    }
  });

  it('a production job that fails rolls back the staging job’s host too (rollback-all across jobs)', async () => {
    const { p, v1, v2 } = await v1Live();
    expect((await run(p, { phase: 'preflight,secrets,snapshot,staging' })).status).toBe('success');
    expect(p.current('thinkpad')).toBe(v2);
    p.fault('rtx1080', v2);
    const prod = await run(p, { phase: 'production' });
    expect(prod.status).toBe('rolled_back');
    expect(currents(p)).toEqual([v1, v1, v1]);
    expect((await p.health('thinkpad')).release).toBe(v1);
  });

  it('a re-run of the same commit weeks later rolls back to the release before it, not to one from its first deploy', async () => {
    const { p, v1, v2 } = await v1Live();
    expect((await run(p)).status).toBe('success'); // v2 everywhere; its rollback point says v1
    fs.writeFileSync(path.join(p.repo, 'stack', 'VERSION'), 'v3\n');
    const v3 = releaseIdFor(p.commit('v3'));
    expect((await run(p)).status).toBe('success');
    expect(currents(p)).toEqual([v3, v3, v3]);
    // Deploy v2 again (an operator going back by deploying it), and make production fail: the hosts must go
    // back to v3, what they ran before this run, not to v1 named by v2's rollback point from its first deploy.
    const v2sha = execFileSync('git', ['rev-parse', 'HEAD~1'], { cwd: p.repo, encoding: 'utf8' }).trim();
    expect(releaseIdFor(v2sha)).toBe(v2);
    p.fault('rtx1080', v2);
    const again = await run(p, { ref: v2sha });
    expect(again.status).toBe('rolled_back');
    expect(currents(p)).toEqual([v3, v3, v3]);
    expect(v1).not.toBe(v3);
  });

  it('the connection to a host dies while env files are written: aborted, old env file intact, the next run sweeps', async () => {
    const { p } = await v1Live();
    const shared = path.join(p.paths.rtx1080, 'shared');
    const before = fs.readFileSync(path.join(shared, '.env'));
    fs.writeFileSync(path.join(shared, '.env.tmp-deadbeef0000'), 'HD_TEST_SECRET=half-writ', { mode: 0o600 });
    const report = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env: { ...env, HD_TEST_SECRET: 'rotated-while-dropping' },
      redactor: new Redactor(),
      onEvent: (e) => {
        if (e.type === 'phase-start' && e.phase === 'secrets') dropHost('rtx1080');
      },
    });
    await lab.sandbox.startHost('rtx1080');
    expect(report.status).toBe('aborted');
    // The lock on the host that vanished could not be released by the run; its post step does that.
    expect(await postStepRelease(p, 'rtx1080')).toBe(true);
    expect(report.phase).toBe('secrets');
    expect(report.error?.host).toBe('rtx1080');
    expect(fs.readFileSync(path.join(shared, '.env'))).toEqual(before);
    // The hosts that got the new file have their old one back ("aborted" means nothing changed).
    for (const h of ['thinkpad', 'vps'])
      expect(fs.readFileSync(path.join(p.paths[h], 'shared', '.env'), 'utf8')).toContain(
        SECRET.split(' ')[0],
      );
    expect(JSON.stringify(report)).not.toContain('rotated-while-dropping');

    const next = await run(p);
    expect(next.status).toBe('success');
    expect(fs.readdirSync(shared).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('the seed pipeline from stage tags alone (no stages declared)', () => {
  /** The fixture's config with its `stages:` list replaced by a `stage:` tag on each host. */
  const tagged = (c: string) =>
    c
      .replace(/^stages:\n[\s\S]*$/m, '')
      .replace(/( {2}thinkpad:\n(?: {4}.*\n)*? {4}path: .*\n)/, '$1    stage: staging\n')
      .replace(/( {2}rtx1080:\n(?: {4}.*\n)*? {4}path: .*\n)/, '$1    stage: production\n')
      .replace(/( {2}vps:\n(?: {4}.*\n)*? {4}path: .*\n)/, '$1    stage: public\n');

  it('staging → production → public → verify; production failing rolls back staging and production', async () => {
    const { p, v1, v2 } = await v1Live(tagged);
    const cfg = fs.readFileSync(p.configPath, 'utf8');
    expect(cfg).not.toContain('stages:');
    expect(cfg.match(/stage: /g)).toHaveLength(3);
    p.fault('rtx1080', v2);
    const report = await run(p);
    expect(report.phases.map((x) => x.name)).toEqual([
      'preflight',
      'secrets',
      'snapshot',
      'staging',
      'production',
    ]);
    expect(report.status).toBe('rolled_back');
    expect(currents(p)).toEqual([v1, v1, v1]);
    expect(report.phases.find((x) => x.name === 'staging')?.status).toBe('rolled_back');
  });

  it('top-level tests gate production in the seed pipeline: failing tests leave production untouched', async () => {
    const { p, v1 } = await v1Live((c) => tagged(c) + 'tests: { run: node smoke-test.js, timeout: 30s }\n');
    p.fault('thinkpad', 'x', 'FAULT-TESTS');
    const report = await run(p);
    expect(report.status).toBe('failed');
    expect(report.error?.class).toBe('tests-failed');
    expect(report.phases.find((x) => x.name === 'staging')?.tests).toMatchObject({
      on: 'thinkpad',
      ok: false,
    });
    expect(report.phases.some((x) => x.name === 'production')).toBe(false);
    expect(currents(p)).toEqual([v1, v1, v1]);
  });
});

describe('re-runs', () => {
  it('staging failing on a re-run of a deployed release rolls back staging only; production keeps what it runs', async () => {
    const { p, v1, v2 } = await v1Live();
    expect((await run(p)).status).toBe('success');
    expect(currents(p)).toEqual([v2, v2, v2]);
    p.fault('thinkpad', v2); // v2 turns unhealthy on staging: the re-run redeploys it there, and it fails
    const report = await run(p);
    expect(report.status).toBe('failed');
    expect(report.phase).toBe('staging');
    // Staging goes back to the release before v2 (its recorded rollback point), production is not touched.
    expect(currents(p)).toEqual([v1, v2, v2]);
    expect((await p.health('rtx1080')).release).toBe(v2);
    expect(report.hosts.find((h) => h.host === 'rtx1080')?.rollback).toBeUndefined();
  });
});

/** Whether a process with exactly this command line runs (not a shell whose script merely contains it). */
function pgrep(commandLine: string): boolean {
  try {
    execFileSync('pgrep', ['-f', `^${commandLine}$`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
