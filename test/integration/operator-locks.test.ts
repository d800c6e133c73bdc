import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { loadConfig } from '../../src/config/load';
import type { HostStatus, LockReleaseResult } from '../../src/targets/inspect';
import { preflight, testContext } from '../helpers/targets';
import { releaseIdFor } from '../../src/run/release';
import { deploy } from '../../src/engine';
import type { Report } from '../../src/report/types';
import { Redactor } from '../../src/secrets/redact';
import { useHomelab, type Project } from '../fixtures/pipeline';

const env = { ...process.env, HD_TEST_SECRET: 'operator-secret', USER: 'dave', GITHUB_ACTIONS: undefined };
const lab = useHomelab();

/** The CLI in-process: argv in, exit code and both streams out. */
async function cli(argv: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  const code = await main(argv, {
    out: { write: (t: string) => (out += t) },
    err: { write: (t: string) => (err += t) },
    env: { ...env, ...extraEnv },
    signals: new EventEmitter(),
    exit: (c) => {
      throw new Error(`exit(${c}) called`);
    },
  });
  return { code, out, err };
}

function holdLock(p: Project, host: string, token: string, actor: string) {
  const ctx = testContext(loadConfig(p.configPath), {
    runToken: token,
    env,
    redactor: new Redactor(),
    run: { actor, id: `run-${token}`, url: `https://github.example/run/${token}` },
  });
  return preflight(ctx, ctx.config.hosts[host], 'production').then(() => ctx);
}

const lockDir = (p: Project, host: string) => path.join(p.paths[host], '.homelab-deploy', 'lock');
const auditOf = (p: Project, host: string) =>
  fs
    .readFileSync(path.join(p.paths[host], '.homelab-deploy', 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const run = (p: Project) =>
  deploy({ configPath: p.configPath, phase: 'all', ref: 'HEAD', env, redactor: new Redactor() });

describe('operator commands against real hosts', () => {
  it('status: current and previous release, lock, last results and rollback points per host', async () => {
    const p = await lab.project();
    expect((await run(p)).status).toBe('success');
    const v1 = p.current('thinkpad') as string;
    const v2 = releaseIdFor(p.commit('v2'));
    expect((await run(p)).status).toBe('success');

    const json = await cli(['status', '--config', p.configPath, '--json']);
    expect(json.code).toBe(0);
    const list = JSON.parse(json.out) as HostStatus[];
    expect(list.map((s) => s.host)).toEqual(['thinkpad', 'rtx1080', 'vps']);
    for (const s of list) {
      expect(s).toMatchObject({ reachable: true, current: v2, previous: v1, lock: { held: false } });
      expect(s.rollbackPoints?.[0]).toMatchObject({ release: v2, previous: v1 });
      expect(s.rollbackPoints?.[1]).toMatchObject({ release: v1, previous: null });
      expect(s.releases).toEqual([v2, v1]);
      expect(s.recent?.filter((l) => l.result === 'deployed').map((l) => l.release)).toEqual([v1, v2]);
    }

    const text = await cli(['status', '--config', p.configPath, '--targets', 'rtx1080']);
    expect(text.code).toBe(0);
    const lines = text.out.trimEnd().split('\n');
    expect(lines[0]).toBe(`rtx1080: current ${v2}, previous ${v1}`);
    expect(lines[1]).toBe('    lock: free');
    expect(lines).toContain('    last results:');
    expect(lines.some((l) => new RegExp(`^ {6}\\S+ deploy ${v2} deployed stage production`).test(l))).toBe(
      true,
    );
    expect(lines).toContain('    rollback points:');
    expect(lines.some((l) => l.startsWith(`      ${v2} -> ${v1} (recorded `))).toBe(true);
    expect(lines.some((l) => l.startsWith(`      ${v1} -> (none: stack stopped) (recorded `))).toBe(true);
    expect(lines).toContain(`    releases on disk: ${v2}, ${v1}`);

    const typo = await cli(['status', '--config', p.configPath, '--targets', 'rtx1800']);
    expect(typo.code).toBe(2);
    expect(typo.err).toBe(
      `--targets: unknown host "rtx1800" (did you mean "rtx1080"?); ${p.configPath} has thinkpad, rtx1080, vps\n`,
    );
  });

  it('lock status and lock release: a live lock is named and refused without --force; --force is audited', async () => {
    const p = await lab.project();
    const holder = await holdLock(p, 'rtx1080', 'aaaa1111', 'alice');
    try {
      const st = await cli(['lock', 'status', '--config', p.configPath]);
      expect(st.code).toBe(0);
      expect(st.out).toMatch(
        /^thinkpad: free\nrtx1080: held by alice \(run https:\/\/github\.example\/run\/aaaa1111, commit 0{12}, phase production\) since \S+Z, heartbeat \d+s ago: live \(stale after 15m00s\)\nvps: free\n$/,
      );
      const js = JSON.parse(
        (await cli(['lock', 'status', '--config', p.configPath, '--json'])).out,
      ) as HostStatus[];
      expect(js[1]).toEqual({
        host: 'rtx1080',
        reachable: true,
        lock: {
          held: true,
          owner: expect.objectContaining({ actor: 'alice', token: 'aaaa1111', phase: 'production' }),
          heartbeatAgeSeconds: expect.any(Number),
          stale: false,
          staleAfterSeconds: 900,
        },
      });

      // No targets: nothing is touched, the operator is told to name them.
      const bare = await cli(['lock', 'release', '--config', p.configPath]);
      expect(bare.code).toBe(2);
      expect(bare.err).toContain('lock release needs --targets h1,h2 or --all');
      expect(fs.existsSync(lockDir(p, 'rtx1080'))).toBe(true);

      const refused = await cli(['lock', 'release', '--config', p.configPath, '--targets', 'rtx1080']);
      expect(refused.code).toBe(1);
      expect(refused.out).toMatch(
        /^rtx1080: refused: the lock is held by alice \(run https:\/\/github\.example\/run\/aaaa1111, commit 0{12}, phase production\) since \S+, heartbeat \S+ ago, younger than lock\.stale_after \(15m00s\), so that run is probably still deploying; check it, then pass --force to remove it anyway\n$/,
      );
      expect(fs.existsSync(lockDir(p, 'rtx1080'))).toBe(true);
      expect(auditOf(p, 'rtx1080').some((a) => a.action === 'lock-released')).toBe(false);

      const forced = await cli([
        'lock',
        'release',
        '--config',
        p.configPath,
        '--targets',
        'rtx1080',
        '--force',
        '--actor',
        'carol',
        '--json',
      ]);
      expect(forced.code).toBe(0);
      expect((JSON.parse(forced.out) as LockReleaseResult[])[0].outcome).toBe('released');
      expect(fs.existsSync(lockDir(p, 'rtx1080'))).toBe(false);
      expect(fs.readdirSync(path.join(p.paths.rtx1080, '.homelab-deploy'))).not.toContainEqual(
        expect.stringMatching(/^lock/),
      );
      const line = auditOf(p, 'rtx1080').filter((a) => a.action === 'lock-released');
      expect(line).toEqual([
        expect.objectContaining({
          action: 'lock-released',
          host: 'rtx1080',
          operator: 'carol',
          forced: true,
          stale: false,
          heartbeatAgeSeconds: expect.any(Number),
          previous_owner: expect.objectContaining({
            actor: 'alice',
            token: 'aaaa1111',
            runUrl: 'https://github.example/run/aaaa1111',
          }),
        }),
      ]);
    } finally {
      await holder.targets.closeAll();
    }
  });

  it('a stale lock is reported STALE and released without --force; the audit names the operator from $USER', async () => {
    const p = await lab.project({
      config: (c) => c.replace('hosts:\n', 'lock: { stale_after: 2s }\nhosts:\n'),
    });
    const dead = await holdLock(p, 'vps', 'dead0000', 'bob');
    await dead.targets.closeAll();
    const owner = path.join(lockDir(p, 'vps'), 'owner.json');
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(owner, old, old);

    const st = await cli(['lock', 'status', '--config', p.configPath, '--targets', 'vps']);
    expect(st.out).toMatch(
      /^vps: held by bob \(.*\) since \S+, heartbeat 2m\d\ds ago: STALE \(stale after 2s\)\n$/,
    );

    const rel = await cli(['lock', 'release', '--config', p.configPath, '--all']);
    expect(rel.code).toBe(0);
    expect(rel.out).toMatch(
      /^thinkpad: no lock\nrtx1080: no lock\nvps: lock released \(was held by bob \(run https:\/\/github\.example\/run\/dead0000, commit 0{12}, phase production\) since \S+Z, heartbeat 2m\d\ds ago, stale\); recorded in the host's audit log\n$/,
    );
    expect(fs.existsSync(lockDir(p, 'vps'))).toBe(false);
    const line = auditOf(p, 'vps').find((a) => a.action === 'lock-released');
    expect(line).toMatchObject({
      operator: 'dave',
      forced: false,
      stale: true,
      previous_owner: { actor: 'bob', token: 'dead0000' },
    });
    expect(line?.heartbeatAgeSeconds).toBeGreaterThanOrEqual(119);

    // The lock is gone: a deploy goes through again.
    expect((await run(p)).status).toBe('success');
  });

  it('run --lock-wait waits for a held lock and deploys once it is released; a bad duration is a usage error', async () => {
    const p = await lab.project();
    const bad = await cli(['run', '--config', p.configPath, '--lock-wait', 'forever']);
    expect(bad.code).toBe(2);
    expect(bad.err).toBe('--lock-wait must be a duration such as 0, 30s or 5m, got "forever"\n');

    const holder = await holdLock(p, 'vps', 'bbbb2222', 'alice');
    const release = setTimeout(() => fs.rmSync(lockDir(p, 'vps'), { recursive: true, force: true }), 1500);
    const t0 = Date.now();
    const res = await cli(['run', '--config', p.configPath, '--lock-wait', '30s', '--json']);
    clearTimeout(release);
    await holder.targets.closeAll();
    const report = JSON.parse(res.out) as Report;
    expect(res.code).toBe(0);
    expect(report.status).toBe('success');
    expect(Date.now() - t0).toBeGreaterThan(1500);
    const vps = report.phases.find((x) => x.name === 'preflight')?.hosts.find((h) => h.host === 'vps');
    expect(vps?.detail?.lockWaitMs).toBeGreaterThanOrEqual(1000);
    expect(res.err).toContain('vps is locked by alice');

    // Without --lock-wait the config's lock.wait (0) applies: a held lock aborts at once.
    const again = await holdLock(p, 'vps', 'cccc3333', 'alice');
    const t1 = Date.now();
    const refused = await cli(['run', '--config', p.configPath, '--json']);
    await again.targets.closeAll();
    expect(refused.code).toBe(1);
    expect((JSON.parse(refused.out) as Report).error?.class).toBe('lock-held');
    expect(Date.now() - t1).toBeLessThan(10_000);
  });
});
