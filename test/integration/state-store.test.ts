import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { DirStateStore } from '../../src/targets/state/dir-store';
import type { LockOwner } from '../../src/targets/target';

/**
 * The directory store is tested across real processes: locks must exclude other processes, not other promises of
 * one process. Children load the store compiled from the same sources the tests import.
 */

const SRC = path.resolve(__dirname, '../../src');
const STORE_SOURCES = ['errors.ts', 'targets/state/atomic-file.ts', 'targets/state/dir-store.ts'];

let build: string;
let work: string;

beforeAll(() => {
  build = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-store-build-'));
  for (const rel of STORE_SOURCES) {
    const out = ts.transpileModule(fs.readFileSync(path.join(SRC, rel), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
      fileName: rel,
    });
    const file = path.join(build, rel.replace(/\.ts$/, '.js'));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, out.outputText);
  }
  // A child that waits at a barrier per round, then takes (or tries to take) the lock of that round's target.
  fs.writeFileSync(
    path.join(build, 'locker.js'),
    `
const fs = require('node:fs');
const path = require('node:path');
const { DirStateStore } = require('./targets/state/dir-store.js');
const [root, barrier, id, rounds, takeover] = process.argv.slice(2);
const store = new DirStateStore(root);
const owner = (r) => ({ token: 'tok-' + id, commit: 'c'.repeat(40), release: 'r' + r, phase: 'production',
  host: 't' + r, startedAt: new Date().toISOString(), heartbeatAt: new Date().toISOString(), actor: 'p' + id });
(async () => {
  for (let r = 0; r < Number(rounds); r++) {
    fs.writeFileSync(path.join(barrier, 'ready-' + r + '-' + id), '');
    while (!fs.existsSync(path.join(barrier, 'go-' + r))) await new Promise((res) => setTimeout(res, 1));
    const res = await store.lock('t' + r, owner(r), { staleAfterMs: 5000, takeoverStale: takeover === 'yes' });
    process.stdout.write(JSON.stringify({ round: r, id, ok: res.ok, holder: res.ok ? null : res.holder && res.holder.token, tookOverFrom: res.tookOverFrom }) + '\\n');
  }
})().catch((e) => { console.error(e); process.exit(1); });
`,
  );
  // A child that keeps replacing a rollback point with a large record until it is killed.
  fs.writeFileSync(
    path.join(build, 'writer.js'),
    `
const { DirStateStore } = require('./targets/state/dir-store.js');
const [root, size] = process.argv.slice(2);
const store = new DirStateStore(root);
(async () => {
  for (let i = 0; ; i++) {
    const c = String.fromCharCode(97 + (i % 26));
    await store.writeRollbackPoint('shop', { release: 'abcdef012345', previous: c, infraSnapshot: c.repeat(Number(size)), recordedAt: String(i) });
    await store.appendReleaseLog('shop', { i, pad: c.repeat(3000) });
    if (i === 0) process.stdout.write('writing\\n');
  }
})();
`,
  );
  fs.writeFileSync(
    path.join(build, 'appender.js'),
    `
const { DirStateStore } = require('./targets/state/dir-store.js');
const [root, id, n] = process.argv.slice(2);
const store = new DirStateStore(root);
(async () => {
  for (let i = 0; i < Number(n); i++) await store.appendReleaseLog('shop', { id, i, pad: id.repeat(500) });
})();
`,
  );
});

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-store-'));
});

afterEach(() => fs.rmSync(work, { recursive: true, force: true }));
afterAll(() => fs.rmSync(build, { recursive: true, force: true }));

function node(script: string, args: string[]): { child: ChildProcess; done: Promise<string> } {
  const child = spawn(process.execPath, [path.join(build, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<string>((resolve, reject) =>
    child.on('close', (code, sig) =>
      code === 0 ? resolve(out) : reject(new Error(`${script} exited ${code ?? sig}: ${err}`)),
    ),
  );
  return { child, done };
}

const owner = (token: string, over: Partial<LockOwner> = {}): LockOwner => ({
  token,
  commit: '0'.repeat(40),
  release: '000000000000',
  phase: 'production',
  host: 'shop',
  startedAt: new Date().toISOString(),
  heartbeatAt: new Date().toISOString(),
  actor: `actor-${token}`,
  ...over,
});

const auditOf = (root: string, target: string) =>
  fs
    .readFileSync(path.join(root, target, 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

function age(root: string, target: string, seconds: number): void {
  const t = new Date(Date.now() - seconds * 1000);
  fs.utimesSync(path.join(root, target, 'lock', 'owner.json'), t, t);
}

interface LockLine {
  round: number;
  id: string;
  ok: boolean;
  holder: string | null;
  tookOverFrom?: { token: string } | null;
}

/** Starts `n` locker processes for `rounds` rounds; all of a round are released at once from a barrier. */
async function race(n: number, rounds: number, takeover: boolean): Promise<LockLine[]> {
  const root = path.join(work, 'state');
  const barrier = path.join(work, 'barrier');
  fs.mkdirSync(barrier, { recursive: true });
  const procs = Array.from({ length: n }, (_, i) =>
    node('locker.js', [root, barrier, String(i), String(rounds), takeover ? 'yes' : 'no']),
  );
  for (let r = 0; r < rounds; r++) {
    const until = Date.now() + 30_000;
    while (fs.readdirSync(barrier).filter((f) => f.startsWith(`ready-${r}-`)).length < n) {
      if (Date.now() > until) throw new Error(`round ${r}: not all lockers got ready`);
      await new Promise((res) => setTimeout(res, 5));
    }
    fs.writeFileSync(path.join(barrier, `go-${r}`), '');
  }
  const outs = await Promise.all(procs.map((p) => p.done));
  return outs.flatMap((o) =>
    o
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as LockLine),
  );
}

describe('directory state store', () => {
  it('20 processes race for a lock: exactly one wins every round, and every loser is told who holds it', async () => {
    const ROUNDS = 8;
    const lines = await race(20, ROUNDS, false);
    const root = path.join(work, 'state');
    const store = new DirStateStore(root);
    for (let r = 0; r < ROUNDS; r++) {
      const round = lines.filter((l) => l.round === r);
      expect(round).toHaveLength(20);
      const winners = round.filter((l) => l.ok);
      expect(winners).toHaveLength(1);
      const token = `tok-${winners[0].id}`;
      // The lock existed with its owner record from the first instant: no loser ever saw a lock without one.
      for (const l of round.filter((x) => !x.ok)) expect(l.holder).toBe(token);
      const state = await store.lockState(`t${r}`, 60_000);
      expect(state).toMatchObject({ held: true, owner: { token }, stale: false });
      const audit = auditOf(root, `t${r}`);
      expect(audit.map((a) => [a.action, a.token])).toEqual([['lock-acquired', token]]);
      // Nothing half-made is left beside the lock.
      expect(fs.readdirSync(path.join(root, `t${r}`)).sort()).toEqual(['audit.log', 'lock']);
    }
  });

  it('a stale lock is taken over only with takeover on, by exactly one of 10 racing processes, audited with the old owner', async () => {
    const root = path.join(work, 'state');
    const store = new DirStateStore(root);
    expect(await store.lock('t0', owner('dead0000'), { staleAfterMs: 5000, takeoverStale: true })).toEqual({
      ok: true,
    });
    age(root, 't0', 60);
    // Takeover off: refused, naming the holder and its age.
    const refused = await store.lock('t0', owner('alive111'), { staleAfterMs: 5000, takeoverStale: false });
    expect(refused).toMatchObject({ ok: false, holder: { token: 'dead0000' } });
    expect((refused as { ageSeconds: number }).ageSeconds).toBeGreaterThanOrEqual(59);
    // A fresh lock is never taken over, takeover on or not.
    const fresh = await store.lock('t1', owner('live2222'), { staleAfterMs: 5000, takeoverStale: true });
    expect(fresh).toEqual({ ok: true });
    expect(
      await store.lock('t1', owner('other333'), { staleAfterMs: 5000, takeoverStale: true }),
    ).toMatchObject({
      ok: false,
      holder: { token: 'live2222' },
    });

    const lines = await race(10, 1, true);
    const winners = lines.filter((l) => l.ok);
    expect(winners).toHaveLength(1);
    expect(winners[0].tookOverFrom).toMatchObject({ token: 'dead0000' });
    const audit = auditOf(root, 't0');
    const takeovers = audit.filter((a) => a.action === 'lock-taken-over');
    expect(takeovers).toHaveLength(1);
    expect(takeovers[0]).toMatchObject({
      token: `tok-${winners[0].id}`,
      previous_owner: { token: 'dead0000', actor: 'actor-dead0000' },
    });
    // The old owner's heartbeat and release now fail: the lock is not its any more.
    expect(await store.heartbeat('t0', 'dead0000')).toBe(false);
    expect(await store.unlock('t0', 'dead0000')).toBe(false);
    expect(await store.lockState('t0', 5000)).toMatchObject({
      held: true,
      owner: { token: `tok-${winners[0].id}` },
    });
    expect(fs.existsSync(path.join(root, 't0', 'takeover'))).toBe(false);
  });

  it('heartbeat refreshes the record and its age; only the owner refreshes or releases; same token is ours', async () => {
    const root = path.join(work, 'state');
    const store = new DirStateStore(root);
    await store.lock('shop', owner('aaaa1111'), { staleAfterMs: 5000, takeoverStale: false });
    expect(await store.lock('shop', owner('aaaa1111'), { staleAfterMs: 5000, takeoverStale: false })).toEqual(
      {
        ok: true,
        ours: true,
      },
    );
    age(root, 'shop', 100);
    expect(await store.lockState('shop', 5000)).toMatchObject({ held: true, stale: true });
    expect(await store.heartbeat('shop', 'bbbb2222')).toBe(false);
    expect(await store.heartbeat('shop', 'aaaa1111')).toBe(true);
    const st = await store.lockState('shop', 5000);
    expect(st).toMatchObject({ held: true, stale: false, heartbeatAgeSeconds: 0 });
    const rec = JSON.parse(
      fs.readFileSync(path.join(root, 'shop', 'lock', 'owner.json'), 'utf8'),
    ) as LockOwner;
    expect(Date.now() - Date.parse(rec.heartbeatAt)).toBeLessThan(5000);
    expect(fs.readdirSync(path.join(root, 'shop', 'lock'))).toEqual(['owner.json']);
    expect(await store.unlock('shop', 'bbbb2222')).toBe(false);
    expect(await store.unlock('shop', 'aaaa1111')).toBe(true);
    expect(await store.lockState('shop', 5000)).toEqual({ held: false });
    expect(await store.heartbeat('shop', 'aaaa1111')).toBe(false);
    expect(auditOf(root, 'shop').map((a) => a.action)).toEqual(['lock-acquired', 'lock-released']);
  });

  it('operator release: refuses a live lock without force, releases stale or forced ones, audited with the owner', async () => {
    const root = path.join(work, 'state');
    const store = new DirStateStore(root);
    const op = (force: boolean) =>
      store.releaseAsOperator('shop', { operator: 'carol', force, staleAfterMs: 5000 });
    expect(await op(false)).toEqual({ host: 'shop', outcome: 'free', lock: { held: false } });
    await store.lock('shop', owner('live0001'), { staleAfterMs: 5000, takeoverStale: false });
    expect(await op(false)).toMatchObject({
      outcome: 'refused-live',
      lock: { held: true, owner: { token: 'live0001' } },
    });
    expect(await store.lockState('shop', 5000)).toMatchObject({ held: true });
    expect(await op(true)).toMatchObject({ outcome: 'released' });
    expect(await store.lockState('shop', 5000)).toEqual({ held: false });

    await store.lock('shop', owner('gone0002'), { staleAfterMs: 5000, takeoverStale: false });
    age(root, 'shop', 30);
    expect(await op(false)).toMatchObject({ outcome: 'released', lock: { stale: true } });
    const released = auditOf(root, 'shop').filter((a) => a.operator === 'carol');
    expect(released).toHaveLength(2);
    expect(released[0]).toMatchObject({
      action: 'lock-released',
      forced: true,
      stale: false,
      previous_owner: { token: 'live0001' },
    });
    expect(released[1]).toMatchObject({
      action: 'lock-released',
      forced: false,
      stale: true,
      previous_owner: { token: 'gone0002' },
    });
    // Nothing renamed aside is left behind.
    expect(fs.readdirSync(path.join(root, 'shop')).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('a writer killed mid-write leaves the old or the new rollback point whole, and whole log lines', async () => {
    const root = path.join(work, 'state');
    const SIZE = 2_000_000;
    const store = new DirStateStore(root);
    for (let round = 0; round < 6; round++) {
      const w = node('writer.js', [root, String(SIZE)]);
      await new Promise<void>((resolve) => w.child.stdout?.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 150)));
      w.child.kill('SIGKILL');
      await w.done.catch(() => undefined);
      const point = await store.readRollbackPoint('shop', 'abcdef012345');
      expect(point).toBeDefined();
      const snap = point?.infraSnapshot ?? '';
      expect(snap).toHaveLength(SIZE);
      expect(snap).toBe((point?.previous ?? '?').repeat(SIZE));
      expect(await store.listRollbackPoints('shop', 10)).toHaveLength(1);
    }
    // Every complete line parses; at most the very last one can be cut, by a kill in the middle of one write(2).
    const lines = (await store.readReleaseLog('shop')).split('\n').filter(Boolean);
    const bad = lines.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    expect(bad).toEqual([]);
    // Temp files of killed writers are named apart, and swept once old.
    const dir = path.join(root, 'shop');
    for (const n of fs.readdirSync(dir).filter((x) => x.includes('.tmp-'))) {
      const old = new Date(Date.now() - 3_600_000);
      fs.utimesSync(path.join(dir, n), old, old);
    }
    await store.lock('shop', owner('sweep001'), { staleAfterMs: 5000, takeoverStale: false });
    expect(fs.readdirSync(dir).filter((x) => x.includes('.tmp-'))).toEqual([]);
  });

  it('appends from 8 processes at once never interleave', async () => {
    const root = path.join(work, 'state');
    await Promise.all(Array.from({ length: 8 }, (_, i) => node('appender.js', [root, `p${i}`, '150']).done));
    const lines = (await new DirStateStore(root).readReleaseLog('shop')).trim().split('\n');
    expect(lines).toHaveLength(1200);
    const parsed = lines.map((l) => JSON.parse(l) as { id: string; i: number; pad: string });
    for (const p of parsed) expect(p.pad).toBe(p.id.repeat(500));
    for (let i = 0; i < 8; i++)
      expect(parsed.filter((p) => p.id === `p${i}`).map((p) => p.i)).toEqual(
        Array.from({ length: 150 }, (_, k) => k),
      );
  });

  it('needs-attention records, audit tails and names that cannot be file names', async () => {
    const root = path.join(work, 'state');
    const store = new DirStateStore(root);
    expect(await store.getNeedsAttention('shop')).toBeUndefined();
    await store.setNeedsAttention('shop', { reason: 'rollback failed' });
    expect(await store.getNeedsAttention('shop')).toEqual({ reason: 'rollback failed' });
    await store.setNeedsAttention('shop', null);
    expect(await store.getNeedsAttention('shop')).toBeUndefined();
    for (let i = 0; i < 5; i++) await store.appendAudit('shop', { i });
    expect(await store.readAudit('shop', 2)).toBe('{"i":3}\n{"i":4}\n');
    expect(await store.readReleaseLog('nothing-here')).toBe('');
    await expect(store.appendAudit('../etc', {})).rejects.toThrow(
      'state store: "../etc" cannot be a target name here',
    );
    await expect(store.readRollbackPoint('shop', '../x')).rejects.toThrow(
      '"../x" cannot be a release id here',
    );
    expect(() => new DirStateStore('relative')).toThrow(
      'state directory must be an absolute path, got "relative"',
    );
  });
});
