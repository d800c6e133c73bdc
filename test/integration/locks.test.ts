import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { preflight, releaseLock, testContext } from '../helpers/targets';
import { DeployError } from '../../src/errors';
import { deploy } from '../../src/engine';
import { Redactor } from '../../src/secrets/redact';
import { useHomelab, type Project } from '../fixtures/pipeline';

const env = { ...process.env, HD_TEST_SECRET: 'lock-test-secret' };
const lab = useHomelab();

async function project(config?: (c: string) => string): Promise<Project> {
  const p = await lab.project({ config });
  return p;
}

function ctxFor(p: Project, token: string, actor = 'alice') {
  return testContext(loadConfig(p.configPath), {
    runToken: token,
    env,
    redactor: new Redactor(),
    run: { actor, id: `run-${token}`, url: `https://github.example/run/${token}` },
  });
}

const auditOf = (p: Project, host: string) =>
  fs
    .readFileSync(path.join(p.paths[host], '.homelab-deploy', 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('deploy locks on real hosts', () => {
  it('a lock held by a live run is refused, naming the holder; only the owner can release it', async () => {
    const p = await project();
    const holder = ctxFor(p, 'aaaa1111', 'alice');
    const host = holder.config.hosts.rtx1080;
    await preflight(holder, host, 'production');
    const report = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env,
      redactor: new Redactor(),
    });
    expect(report.status).toBe('aborted');
    expect(report.error?.class).toBe('lock-held');
    expect(report.error?.message).toMatch(
      /rtx1080 is locked by alice \(run https:\/\/github\.example\/run\/aaaa1111, commit 0{12}, phase production\) since \S+; last heartbeat \d+s ago/,
    );
    // The refused run released its own locks on the other hosts and left the holder's lock alone.
    expect(fs.existsSync(path.join(p.paths.thinkpad, '.homelab-deploy', 'lock'))).toBe(false);
    expect(fs.existsSync(path.join(p.paths.rtx1080, '.homelab-deploy', 'lock'))).toBe(true);
    expect(p.current('thinkpad')).toBeNull();
    const other = ctxFor(p, 'bbbb2222');
    expect(await releaseLock(other, host)).toBe(false);
    expect(fs.existsSync(path.join(p.paths.rtx1080, '.homelab-deploy', 'lock'))).toBe(true);
    expect(await releaseLock(holder, host)).toBe(true);
    expect(fs.existsSync(path.join(p.paths.rtx1080, '.homelab-deploy', 'lock'))).toBe(false);
    await holder.targets.closeAll();
    await other.targets.closeAll();
  });

  it('a stale lock is kept unless the config allows takeover; a takeover is audited with the old owner', async () => {
    const p = await project((c) => c.replace('hosts:\n', 'lock: { stale_after: 2s }\nhosts:\n'));
    const dead = ctxFor(p, 'dead0000', 'bob');
    await preflight(dead, dead.config.hosts.vps, 'public');
    const owner = path.join(p.paths.vps, '.homelab-deploy', 'lock', 'owner.json');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(owner, old, old);

    const refused = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env,
      redactor: new Redactor(),
    });
    expect(refused.status).toBe('aborted');
    expect(refused.error?.message).toMatch(
      /locked by bob .*heartbeat is \d+s old \(stale\) but lock\.takeover_stale is off/,
    );

    fs.writeFileSync(
      p.configPath,
      fs
        .readFileSync(p.configPath, 'utf8')
        .replace('stale_after: 2s', 'stale_after: 2s, takeover_stale: true'),
    );
    const taken = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env,
      redactor: new Redactor(),
    });
    expect(taken.status).toBe('success');
    expect(taken.audit.find((a) => a.host === 'vps' && a.action === 'lock-taken-over')).toBeDefined();
    const takeover = auditOf(p, 'vps').find((a) => a.action === 'lock-taken-over');
    expect(takeover?.previous_owner).toMatchObject({ actor: 'bob', token: 'dead0000' });
    expect(fs.existsSync(path.join(p.paths.vps, '.homelab-deploy', 'lock'))).toBe(false);
    await dead.targets.closeAll();
  });

  it('a takeover mutex left by a killed run expires instead of blocking every later takeover', async () => {
    const p = await project((c) =>
      c.replace('hosts:\n', 'lock: { stale_after: 2s, takeover_stale: true }\nhosts:\n'),
    );
    const dead = ctxFor(p, 'dead0001', 'dave');
    await preflight(dead, dead.config.hosts.vps, 'public');
    const meta = path.join(p.paths.vps, '.homelab-deploy');
    const old = new Date(Date.now() - 5 * 60_000);
    fs.utimesSync(path.join(meta, 'lock', 'owner.json'), old, old);
    fs.mkdirSync(path.join(meta, 'takeover'));
    fs.utimesSync(path.join(meta, 'takeover'), old, old);
    const taken = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env,
      redactor: new Redactor(),
    });
    expect(taken.status).toBe('success');
    expect(taken.audit.find((a) => a.host === 'vps' && a.action === 'lock-taken-over')).toBeDefined();
    expect(fs.existsSync(path.join(meta, 'takeover'))).toBe(false);
    await dead.targets.closeAll();
  });

  it('20 concurrent acquirers: exactly one wins', async () => {
    const p = await project();
    const ctxs = Array.from({ length: 20 }, (_, i) => ctxFor(p, `race${String(i).padStart(4, '0')}`));
    const results = await Promise.allSettled(
      ctxs.map((c) => preflight(c, c.config.hosts.thinkpad, 'staging')),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(19);
    for (const l of lost) expect((l.reason as DeployError).errorClass).toBe('lock-held');
    const winner = ctxs[results.findIndex((r) => r.status === 'fulfilled')];
    expect(
      JSON.parse(
        fs.readFileSync(path.join(p.paths.thinkpad, '.homelab-deploy', 'lock', 'owner.json'), 'utf8'),
      ).token,
    ).toBe(winner.runToken);
    await Promise.all(ctxs.map((c) => c.targets.closeAll()));
  });

  it('SIGTERM mid-stage: the CLI stops within 7 s, kills its remote commands, releases every lock, leaves a record', async () => {
    const sleeper = `sleep 47${Math.floor(Math.random() * 90) + 10}`;
    const p = await project((c) => c.replace('up: sh ./up.sh', `up: "sh ./up.sh && ${sleeper}"`));
    const cli = path.join(__dirname, '..', '..', 'dist', 'cli', 'index.js');
    const child = spawn(process.execPath, [cli, 'run', '--config', p.configPath], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (pgrepOk(sleeper)) {
          clearInterval(t);
          resolve();
        }
      }, 100);
      setTimeout(() => reject(new Error(`never reached the stage: ${out}`)), 30_000);
    });
    const t0 = Date.now();
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(Date.now() - t0).toBeLessThan(7000);
    expect(code).toBe(1);
    expect(out).toContain('SIGTERM: stopping');
    expect(pgrepOk(sleeper)).toBe(false);
    for (const h of ['thinkpad', 'rtx1080', 'vps'])
      expect(fs.existsSync(path.join(p.paths[h], '.homelab-deploy', 'lock'))).toBe(false);
    const log = fs.readFileSync(path.join(p.paths.thinkpad, '.homelab-deploy', 'releases.log'), 'utf8');
    expect(log).toContain('"result":"started"');
    expect(out).toMatch(/\[cancelled\]/);
  });

  it('an interrupted env upload leaves the old env file intact; the next run sweeps the temp file', async () => {
    const p = await project();
    const first = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env,
      redactor: new Redactor(),
    });
    expect(first.status).toBe('success');
    const shared = path.join(p.paths.rtx1080, 'shared');
    const before = fs.readFileSync(path.join(shared, '.env'));
    // What a run killed mid-upload leaves: a partial 0600 temp file next to the live one.
    fs.writeFileSync(path.join(shared, '.env.tmp-deadbeef0000'), 'HD_TEST_SECRET=half-writ', { mode: 0o600 });
    expect(fs.readFileSync(path.join(shared, '.env'))).toEqual(before);
    const second = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env: { ...env, HD_TEST_SECRET: 'rotated' },
      redactor: new Redactor(),
    });
    expect(second.status).toBe('success');
    expect(fs.readdirSync(shared).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(fs.readFileSync(path.join(shared, '.env'), 'utf8')).toContain(`HD_TEST_SECRET='rotated'`);
    const secrets = second.phases.find((x) => x.name === 'secrets');
    expect(secrets?.hosts.map((h) => h.detail?.changed)).toEqual([
      'HD_TEST_SECRET',
      'HD_TEST_SECRET',
      'HD_TEST_SECRET',
    ]);
    const third = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env: { ...env, HD_TEST_SECRET: 'rotated' },
      redactor: new Redactor(),
    });
    expect(third.phases.find((x) => x.name === 'secrets')?.hosts.map((h) => h.detail?.state)).toEqual([
      'unchanged',
      'unchanged',
      'unchanged',
    ]);
    // The release was already current everywhere: no redeploy, only health checks.
    expect(third.phases.find((x) => x.name === 'staging')?.hosts[0].detail).toEqual({ unchanged: true });
    expect(JSON.stringify([second, third])).not.toContain('rotated');
  });
});

/** A process with exactly this command line (not a shell whose script merely contains it) runs. */
function pgrepOk(commandLine: string): boolean {
  try {
    execFileSync('pgrep', ['-f', `^${commandLine}$`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
