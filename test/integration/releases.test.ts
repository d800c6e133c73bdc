import * as fs from 'node:fs';
import * as path from 'node:path';
import { releaseIdFor } from '../../src/run/release';
import { deploy } from '../../src/engine';
import { Redactor } from '../../src/secrets/redact';
import { useHomelab, type Project } from '../fixtures/pipeline';

const lab = useHomelab();

const run = (p: Project, secret: string) =>
  deploy({
    configPath: p.configPath,
    phase: 'all',
    ref: 'HEAD',
    env: { ...process.env, HD_TEST_SECRET: secret },
    redactor: new Redactor(),
  });

describe('releases on a host', () => {
  it('keep_releases prunes old releases with their bookkeeping, never the current one or the rollback target', async () => {
    const p = await lab.project({
      config: (c) => c.replace('  min_free_disk: 1MB\n', '  min_free_disk: 1MB\n  keep_releases: 2\n'),
    });
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) {
      if (i > 1) p.commit(`v${i}`);
      const r = await run(p, `secret-${i}`);
      expect(r.status).toBe('success');
      ids.push(r.release.id);
    }
    const dir = p.paths.rtx1080;
    const releases = fs.readdirSync(path.join(dir, 'releases')).sort();
    // v5 is current and v4 its rollback target: exactly those two are left of five.
    expect(releases).toEqual([ids[3], ids[4]].sort());
    expect(path.basename(fs.readlinkSync(path.join(dir, 'current')))).toBe(ids[4]);
    const meta = fs.readdirSync(path.join(dir, '.homelab-deploy'));
    expect(meta.filter((f) => f.startsWith('rollback-point-')).sort()).toEqual(
      [`rollback-point-${ids[3]}.json`, `rollback-point-${ids[4]}.json`].sort(),
    );
    // Env files kept for rollbacks that can no longer happen hold secrets for nothing: they go with the release.
    const kept = fs.readdirSync(path.join(dir, 'shared')).filter((f) => f.startsWith('.env.before-'));
    expect(kept.sort()).toEqual([`.env.before-${ids[3]}`, `.env.before-${ids[4]}`].sort());
    expect(fs.readFileSync(path.join(dir, 'shared', `.env.before-${ids[4]}`), 'utf8')).toContain('secret-4');

    // The release log has one started and one deployed line per release, each with who, what and how long.
    const log = fs
      .readFileSync(path.join(dir, '.homelab-deploy', 'releases.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const id of ids) {
      const lines = log.filter((l) => l.release === id);
      expect(lines.map((l) => l.result)).toEqual(['started', 'deployed']);
      const done = lines[1];
      expect(done).toMatchObject({ host: 'rtx1080', stage: 'production', event: 'deploy' });
      expect(typeof done.durationMs).toBe('number');
      expect(done.token).toBe(lines[0].token);
      expect(String(done.commit)).toMatch(/^[0-9a-f]{40}$/);
      expect(releaseIdFor(String(done.commit))).toBe(id);
    }
  }, 120_000);

  it('redeploying the current release is a no-op; a changed secret redeploys it so the stack sees the new value', async () => {
    const p = await lab.project();
    expect((await run(p, 'first')).status).toBe('success');
    const pid = () => fs.readFileSync(path.join(p.paths.thinkpad, 'shared', 'app.pid'), 'utf8').trim();
    const pid1 = pid();
    const same = await run(p, 'first');
    expect(same.phases.find((x) => x.name === 'staging')?.hosts[0].detail).toEqual({ unchanged: true });
    expect(pid()).toBe(pid1);
    const rotated = await run(p, 'second');
    expect(rotated.status).toBe('success');
    expect(rotated.phases.find((x) => x.name === 'secrets')?.hosts[0].detail).toMatchObject({
      state: 'written',
      changed: 'HD_TEST_SECRET',
    });
    // The stack was started again (a new process) rather than left running with the old value.
    expect(pid()).not.toBe(pid1);
    expect(rotated.phases.find((x) => x.name === 'staging')?.hosts[0].detail?.unchanged).toBeUndefined();
  });
});
