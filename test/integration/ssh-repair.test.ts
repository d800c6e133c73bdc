import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { deploy } from '../../src/engine';
import { releaseIdFor } from '../../src/run/release';
import { Redactor } from '../../src/secrets/redact';
import { testContext } from '../helpers/targets';
import { useHomelab, type Project } from '../fixtures/pipeline';

/**
 * What a dead run leaves on a real host (sshd on loopback) and what the next run does about it: its processes
 * killed (only those of this deploy path whose SSH session is gone, or of the run whose lock it took over), its
 * upload and temp files removed, a deploy it left half way closed in the release log, all said in the report; and
 * an env file put back to exactly what this run replaced, also when an earlier run of the same release kept an
 * older copy.
 */

const env = { ...process.env, HD_TEST_SECRET: 'repair-secret-1' };
const lab = useHomelab();
const STALE = (c: string) => c + 'lock: { stale_after: 2s, takeover_stale: true }\n';

const run = (p: Project, e: NodeJS.ProcessEnv = env) =>
  deploy({ configPath: p.configPath, phase: 'all', ref: 'HEAD', env: e, redactor: new Redactor() });

const ctxFor = (p: Project, token: string, e: NodeJS.ProcessEnv = env) =>
  testContext(loadConfig(p.configPath), { runToken: token, env: e, redactor: new Redactor() });

const alive = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
};

/** Pids of shells whose command line ends with `word` (on the host side: not the local ssh client's). */
function pidsEndingWith(word: string): number[] {
  const out = execFileSync('ps', ['-A', '-o', 'pid=', '-o', 'args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => !!m && m[2].startsWith('sh -c ') && m[2].endsWith(` ${word}`))
    .map((m) => Number(m[1]));
}

async function waitFor<T>(what: string, f: () => T | undefined, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a run repairs what a dead run left on a host', () => {
  it('kills its processes, removes its upload and temp files, closes its half-done deploy, and deploys', async () => {
    const p = await lab.project({ config: STALE });
    expect((await run(p)).status).toBe('success');
    const v2 = p.commit('v2');
    const rel2 = releaseIdFor(v2);
    const rtx = p.paths.rtx1080;
    const meta = path.join(rtx, '.homelab-deploy');

    // The dead run (token deadbeef0001) took the lock, started to switch rtx1080 to v2 and was killed there.
    const dead = ctxFor(p, 'deadbeef0001');
    await dead.targets.get('rtx1080').preflight('production');
    await dead.targets.closeAll();
    const owner = path.join(meta, 'lock', 'owner.json');
    const old = new Date(Date.now() - 3_600_000);
    fs.utimesSync(owner, old, old);
    const started = {
      time: new Date().toISOString(),
      host: 'rtx1080',
      release: rel2,
      commit: v2,
      token: 'deadbeef0001',
      event: 'deploy',
      stage: 'production',
      previous: p.current('rtx1080'),
      result: 'started',
    };
    fs.appendFileSync(path.join(meta, 'releases.log'), JSON.stringify(started) + '\n');
    fs.mkdirSync(path.join(rtx, 'releases', `.incoming-${rel2}-deadbeef0001`, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(rtx, 'shared', '.env.tmp-deadbeef0001'), 'HALF=1\n', { mode: 0o600 });

    // Its `up`, still running with no session above it; a command of a live session in the same path, and an
    // orphan of another deploy path on the same machine: neither may be touched.
    const detach = (script: string, token: string) =>
      lab.sandbox.ssh(
        'rtx1080',
        `setsid nohup sh -c ${JSON.stringify(script)} ${token} >/dev/null 2>&1 </dev/null &`,
      );
    await detach(`cd ${rtx} && sleep 300`, 'hd-deadbeef0001-7');
    const other = fs.mkdtempSync(path.join(lab.sandbox.host('rtx1080').root, 'other-'));
    await detach(`cd ${other} && sleep 300`, 'hd-elsewhere01-3');
    const liveSession = lab.sandbox.ssh('rtx1080', `sh -c 'cd ${rtx} && sleep 60' hd-livesess01-2`);
    const orphan = await waitFor('the dead run’s up', () => pidsEndingWith('hd-deadbeef0001-7')[0]);
    const elsewhere = await waitFor('the other path’s orphan', () => pidsEndingWith('hd-elsewhere01-3')[0]);
    const live = await waitFor('the live command', () => pidsEndingWith('hd-livesess01-2')[0]);

    // Until the next run, `status` says the host was left between two releases.
    const look = ctxFor(p, 'look00000001');
    const before = await look.targets.get('rtx1080').status();
    await look.targets.closeAll();
    expect(before.needsAttention).toMatchObject({ reason: 'interrupted-deploy', release: rel2 });

    const r = await run(p);
    expect(r.status).toBe('success');
    expect(r.audit.some((a) => a.host === 'rtx1080' && a.action === 'lock-taken-over')).toBe(true);
    const repaired = String(
      r.phases.find((x) => x.name === 'preflight')?.hosts.find((h) => h.host === 'rtx1080')?.detail?.repaired,
    );
    expect(repaired).toContain(`the deploy of ${rel2} by run deadbeef0001 never finished`);
    expect(repaired).toMatch(/killed \d+ processes of runs deadbeef0001/);
    expect(repaired).toContain(`removed releases/.incoming-${rel2}-deadbeef0001`);
    expect(repaired).toContain('removed shared/.env.tmp-deadbeef0001');

    await waitFor('the orphan to be gone', () => (alive(orphan) ? undefined : true));
    expect(alive(elsewhere)).toBe(true);
    expect(alive(live)).toBe(true);
    expect(fs.existsSync(path.join(rtx, 'releases', `.incoming-${rel2}-deadbeef0001`))).toBe(false);
    expect(fs.existsSync(path.join(rtx, 'shared', '.env.tmp-deadbeef0001'))).toBe(false);
    expect(p.current('rtx1080')).toBe(rel2);
    const log = fs
      .readFileSync(path.join(meta, 'releases.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(log.find((l) => l.token === 'deadbeef0001' && l.result === 'failed')).toMatchObject({
      error: 'interrupted',
      release: rel2,
      stage: 'production',
    });
    const after = ctxFor(p, 'look00000002');
    expect((await after.targets.get('rtx1080').status()).needsAttention).toBeUndefined();
    await after.targets.closeAll();
    // What the test started goes with it: the live command and the other path's orphan, with their sleeps.
    for (const pid of [live, elsewhere]) {
      const children = execFileSync('ps', ['-A', '-o', 'pid=', '-o', 'ppid='], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.trim().split(/\s+/).map(Number))
        .filter(([, ppid]) => ppid === pid)
        .map(([child]) => child);
      for (const x of [pid, ...children])
        try {
          process.kill(x, 'SIGKILL');
        } catch {
          /* already gone */
        }
    }
    await liveSession;
  }, 90_000);
});

describe('a run undoes exactly its own env file change', () => {
  const envFile = (p: Project) => path.join(p.paths.vps, 'shared', '.env');

  it('puts back the file it replaced (not an older copy of the same release), or removes one it created', async () => {
    const p = await lab.project();
    const vps = (c: ReturnType<typeof ctxFor>) => c.targets.get('vps');
    const release = (c: ReturnType<typeof ctxFor>) => vps(c).releaseLock();

    // First write ever on this host: undone, there is no env file again.
    const a = ctxFor(p, 'envrun00000a');
    await vps(a).preflight('public');
    await vps(a).writeSecrets?.('.env', 'HD_TEST_SECRET=first\n');
    expect(fs.readFileSync(envFile(p), 'utf8')).toBe('HD_TEST_SECRET=first\n');
    await vps(a).restoreSecrets?.();
    expect(fs.existsSync(envFile(p))).toBe(false);
    expect(await release(a)).toBe(true);
    await a.targets.closeAll();

    // Runs b and c keep their values (the host ends on their release, the same release each time; c's write
    // keeps b's file as the release's pre-deploy copy); run d, of the same release again, aborts.
    const keep = async (token: string, value: string) => {
      const x = ctxFor(p, token);
      await vps(x).preflight('public');
      await vps(x).writeSecrets?.('.env', `HD_TEST_SECRET=${value}\n`);
      expect(await release(x)).toBe(true);
      await x.targets.closeAll();
    };
    await keep('envrun00000b', 'second');
    await keep('envrun00000c', 'third');
    const d = ctxFor(p, 'envrun00000d');
    await vps(d).preflight('public');
    const res = await vps(d).writeSecrets?.('.env', 'HD_TEST_SECRET=fourth\n');
    expect(res?.state).toBe('written');
    expect(fs.readFileSync(envFile(p), 'utf8')).toBe('HD_TEST_SECRET=fourth\n');
    await vps(d).restoreSecrets?.();
    expect(fs.readFileSync(envFile(p), 'utf8')).toBe('HD_TEST_SECRET=third\n');
    expect(fs.statSync(envFile(p)).mode & 0o777).toBe(0o600);
    expect(await release(d)).toBe(true);
    await d.targets.closeAll();
    // Nothing of any of these runs is left beside the file but the release's pre-deploy copy.
    const left = fs.readdirSync(path.dirname(envFile(p))).filter((f) => f.startsWith('.env'));
    expect(left.sort()).toEqual(['.env', `.env.before-${releaseIdFor('0'.repeat(40))}`]);
    expect(fs.readFileSync(`${envFile(p)}.before-${releaseIdFor('0'.repeat(40))}`, 'utf8')).toBe(
      'HD_TEST_SECRET=second\n',
    );
  }, 60_000);
});
