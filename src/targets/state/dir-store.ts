import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeployError } from '../../errors';
import type { LockOwner, LockState, OperatorLockRelease, RollbackPoint } from '../target';
import { appendLine, fsyncDir, sweepTempFiles, writeFileAtomic } from './atomic-file';
import type { StateStore } from './store';

/** File names inside `<root>/<target>/`; the same names an SSH host keeps under `.homelab-deploy/`. */
export const DIR_LAYOUT = {
  lock: 'lock',
  lockOwner: 'owner.json',
  takeover: 'takeover',
  releaseLog: 'releases.log',
  auditLog: 'audit.log',
  needsAttention: 'needs-attention.json',
  rollbackPoint: (release: string) => `rollback-point-${release}.json`,
} as const;

const POINT_RE = /^rollback-point-(.+)\.json$/;
/** Target names and release ids become file names: no separators, no dot-only names, no hidden files. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** A takeover mutex or a half-made lock older than this belongs to a process that was killed holding it. */
const ABANDONED_MS = 60_000;

type LockResult =
  | { ok: true; ours?: boolean; tookOverFrom?: LockOwner | null }
  | { ok: false; holder: LockOwner | null; ageSeconds: number };

interface LockSeen {
  /** The owner record's text exactly as read, to tell later whether it is still the same lock. */
  text: string;
  owner: LockOwner | null;
  ageMs: number;
}

const isCode = (err: unknown, ...codes: string[]) =>
  codes.includes((err as NodeJS.ErrnoException | undefined)?.code ?? '');

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as LockOwner;
    return o && typeof o === 'object' && typeof o.token === 'string' ? o : null;
  } catch {
    return null;
  }
}

const rand = () => randomBytes(6).toString('hex');

/**
 * A StateStore on a local directory: the runner's disk, for targets that have no host of their own.
 *
 * `<root>/<target>/lock/owner.json` is the deploy lock. It is made whole in a fresh temp directory (owner record
 * written and synced) and then renamed onto `lock`; rename(2) of a directory fails when a non-empty `lock`
 * exists, so exactly one of any number of processes gets it, and nobody can ever see a lock without its owner.
 * The heartbeat replaces owner.json atomically (its mtime is the age other runs judge). Everything that removes a
 * lock (its owner's release, an operator) first renames it aside and then checks that what it moved is the lock it
 * judged, so a lock taken a moment later by someone else is never deleted. A takeover replaces the owner record
 * inside the lock directory instead, so the lock never disappears in between.
 *
 * What it does NOT guarantee:
 * - It is one machine's directory. Two runners do not share it, so it excludes two deploys of a target only among
 *   the jobs that run on this runner; across machines the workflow's `concurrency` group is what serialises
 *   deploys. A directory on a GitHub-hosted runner is gone when the job ends, and with it the release log and the
 *   rollback points: later jobs then find no rollback point (use a self-hosted runner, or a state path that
 *   outlives the job).
 * - Local file systems only: on NFS and similar, rename and O_APPEND are not atomic between clients.
 * - A heartbeat is check-then-replace: an operator's forced release that lands between the two can be undone by
 *   the old owner's record coming back; the next heartbeat of the new owner then reports its lock as lost, so two
 *   runs still never both believe they hold it for longer than one heartbeat interval.
 * - An empty `lock` directory (made by hand) does not block rename(2) and is replaced by the next locker.
 */
export class DirStateStore implements StateStore {
  readonly describe: string;
  private readonly hostname = os.hostname();

  constructor(readonly root: string) {
    if (!path.isAbsolute(root))
      throw new DeployError(
        'config',
        `state directory must be an absolute path, got ${JSON.stringify(root)}`,
      );
    this.describe = `${this.hostname}:${root}`;
  }

  private targetDir(target: string): string {
    if (!NAME_RE.test(target) || target.includes('..'))
      throw new DeployError('config', `state store: ${JSON.stringify(target)} cannot be a target name here`);
    return path.join(this.root, target);
  }

  private async ensureDir(target: string): Promise<string> {
    const dir = this.targetDir(target);
    await fs.promises.mkdir(dir, { recursive: true });
    return dir;
  }

  private pointFile(target: string, release: string): string {
    if (!NAME_RE.test(release) || release.includes('..'))
      throw new DeployError('config', `state store: ${JSON.stringify(release)} cannot be a release id here`);
    return path.join(this.targetDir(target), DIR_LAYOUT.rollbackPoint(release));
  }

  // ---- lock ------------------------------------------------------------------------------------------------

  /** Builds a complete lock directory aside and renames it onto `lock`; false when a lock already exists. */
  private async take(dir: string, owner: LockOwner): Promise<boolean> {
    const tmp = await fs.promises.mkdtemp(path.join(dir, '.lock-new-'));
    try {
      const h = await fs.promises.open(path.join(tmp, DIR_LAYOUT.lockOwner), 'wx', 0o644);
      try {
        await h.writeFile(JSON.stringify(owner) + '\n');
        await h.sync();
      } finally {
        await h.close();
      }
      await fsyncDir(tmp);
      await fs.promises.rename(tmp, path.join(dir, DIR_LAYOUT.lock));
    } catch (err) {
      await fs.promises.rm(tmp, { recursive: true, force: true });
      if (isCode(err, 'ENOTEMPTY', 'EEXIST')) return false;
      throw err;
    }
    await fsyncDir(dir);
    return true;
  }

  /** The lock as it is now, or undefined when there is none. */
  private async seeLock(lockDir: string): Promise<LockSeen | undefined> {
    let dirStat: fs.Stats;
    try {
      dirStat = await fs.promises.stat(lockDir);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return undefined;
      throw err;
    }
    const file = path.join(lockDir, DIR_LAYOUT.lockOwner);
    const [text, st] = await Promise.all([
      fs.promises.readFile(file, 'utf8').catch(() => ''),
      fs.promises.stat(file).catch(() => dirStat),
    ]);
    return { text, owner: parseOwner(text), ageMs: Math.max(0, Date.now() - st.mtimeMs) };
  }

  /** Moves the lock aside and checks it is the one judged (`expect`); puts back anything else untouched. */
  private async moveAside(
    dir: string,
    why: string,
    expect: (moved: LockSeen) => boolean,
  ): Promise<{ ok: true; aside: string; moved: LockSeen } | { ok: false; error?: string }> {
    const lockDir = path.join(dir, DIR_LAYOUT.lock);
    const aside = path.join(dir, `.lock-${why}-${rand()}`);
    try {
      await fs.promises.rename(lockDir, aside);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return { ok: false };
      throw err;
    }
    const moved = await this.seeLock(aside);
    if (moved && expect(moved)) return { ok: true, aside, moved };
    // Released and taken again between our look and the rename: that lock is someone else's; put it back.
    try {
      await fs.promises.rename(aside, lockDir);
      return { ok: false };
    } catch {
      return { ok: false, error: `a lock moved aside to ${aside} could not be put back: a new lock exists` };
    }
  }

  private audit(dir: string, record: Record<string, unknown>): Promise<void> {
    return appendLine(path.join(dir, DIR_LAYOUT.auditLog), JSON.stringify(record));
  }

  private lockRecord(action: string, target: string, owner: LockOwner, extra: Record<string, unknown> = {}) {
    return {
      time: new Date().toISOString(),
      action,
      host: target,
      target,
      release: owner.release,
      commit: owner.commit,
      actor: owner.actor,
      runId: owner.runId,
      runUrl: owner.runUrl,
      token: owner.token,
      phase: owner.phase,
      from: this.hostname,
      ...extra,
    };
  }

  /** A lock whose taking cannot be audited is not kept: an unaudited lock action would be lost. */
  private async auditOrGiveBack(
    target: string,
    dir: string,
    owner: LockOwner,
    record: Record<string, unknown>,
  ): Promise<void> {
    try {
      await this.audit(dir, record);
    } catch (err) {
      const moved = await this.moveAside(dir, 'unaudited', (m) => m.owner?.token === owner.token).catch(
        () => undefined,
      );
      if (moved?.ok) await fs.promises.rm(moved.aside, { recursive: true, force: true });
      throw new DeployError(
        'precondition',
        `${this.describe}: the lock on ${target} was taken but its audit record could not be written (${(err as Error).message}); the lock was given back`,
      );
    }
  }

  async lock(
    target: string,
    owner: LockOwner,
    opts: { staleAfterMs: number; takeoverStale: boolean },
  ): Promise<LockResult> {
    const dir = await this.ensureDir(target);
    await this.sweepAbandoned(dir);
    const lockDir = path.join(dir, DIR_LAYOUT.lock);
    // A lock released between our failed take and our look is free again: try once more, then report it held.
    for (let round = 0; round < 3; round++) {
      if (await this.take(dir, owner)) {
        await this.auditOrGiveBack(target, dir, owner, this.lockRecord('lock-acquired', target, owner));
        return { ok: true };
      }
      const seen = await this.seeLock(lockDir);
      if (!seen) continue;
      if (seen.owner?.token === owner.token) return { ok: true, ours: true };
      const held = { ok: false as const, holder: seen.owner, ageSeconds: Math.floor(seen.ageMs / 1000) };
      if (seen.ageMs < opts.staleAfterMs || !opts.takeoverStale) return held;
      const took = await this.takeOver(target, dir, owner, seen, opts.staleAfterMs);
      if (took) return took;
      // Someone else took it over or re-took it first: look again, and report whoever holds it now.
    }
    const seen = await this.seeLock(lockDir);
    return { ok: false, holder: seen?.owner ?? null, ageSeconds: Math.floor((seen?.ageMs ?? 0) / 1000) };
  }

  /**
   * Takes over a stale lock under a second mutex (an atomic mkdir), so two runs that both judged it stale cannot
   * both take it; staleness is judged again under the mutex. The owner record is replaced inside the existing lock
   * directory (atomic rename of a file), so the lock never disappears in between and no third run can slip in
   * with a plain take. Undefined: not taken (someone else was quicker, or the lock changed).
   */
  private async takeOver(
    target: string,
    dir: string,
    owner: LockOwner,
    judged: LockSeen,
    staleAfterMs: number,
  ): Promise<LockResult | undefined> {
    const mutex = path.join(dir, DIR_LAYOUT.takeover);
    try {
      await fs.promises.mkdir(mutex);
    } catch (err) {
      if (isCode(err, 'EEXIST')) return undefined;
      throw err;
    }
    const lockDir = path.join(dir, DIR_LAYOUT.lock);
    const file = path.join(lockDir, DIR_LAYOUT.lockOwner);
    const tmp = path.join(lockDir, `.owner.json.takeover-${rand()}`);
    try {
      // Judged again under the mutex: another run may have taken it over between our look and our mutex.
      const now = await this.seeLock(lockDir);
      if (!now || now.text !== judged.text || now.ageMs < staleAfterMs) return undefined;
      try {
        const h = await fs.promises.open(tmp, 'wx', 0o644);
        try {
          await h.writeFile(JSON.stringify(owner) + '\n');
          await h.sync();
        } finally {
          await h.close();
        }
      } catch (err) {
        if (isCode(err, 'ENOENT')) return undefined; // released meanwhile
        throw err;
      }
      // The last look right before the swap: only the stale owner itself or an operator can change it now.
      const last = await fs.promises.readFile(file, 'utf8').catch(() => '');
      if (last !== now.text) return undefined;
      try {
        await fs.promises.rename(tmp, file);
      } catch (err) {
        if (isCode(err, 'ENOENT')) return undefined;
        throw err;
      }
      await fsyncDir(lockDir);
      await this.auditOrGiveBack(
        target,
        dir,
        owner,
        this.lockRecord('lock-taken-over', target, owner, {
          previous_owner: now.owner ?? (now.text.trim() || null),
          previousHeartbeatAgeSeconds: Math.floor(now.ageMs / 1000),
        }),
      );
      return { ok: true, tookOverFrom: now.owner };
    } finally {
      await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      await fs.promises.rmdir(mutex).catch(() => undefined);
    }
  }

  /** Leftovers of processes killed mid-acquire or mid-takeover; they would otherwise block takeovers for ever. */
  private async sweepAbandoned(dir: string): Promise<void> {
    const names = await fs.promises.readdir(dir).catch(() => [] as string[]);
    const now = Date.now();
    await Promise.all(
      names
        .filter((n) => n === DIR_LAYOUT.takeover || n.startsWith('.lock-new-'))
        .map(async (n) => {
          const p = path.join(dir, n);
          const st = await fs.promises.stat(p).catch(() => undefined);
          if (!st || now - st.mtimeMs < ABANDONED_MS) return;
          if (n === DIR_LAYOUT.takeover) await fs.promises.rmdir(p).catch(() => undefined);
          else await fs.promises.rm(p, { recursive: true, force: true });
        }),
    );
    await sweepTempFiles(dir, 10 * ABANDONED_MS);
  }

  async heartbeat(target: string, token: string): Promise<boolean> {
    const lockDir = path.join(this.targetDir(target), DIR_LAYOUT.lock);
    const file = path.join(lockDir, DIR_LAYOUT.lockOwner);
    const read = async () => parseOwner(await fs.promises.readFile(file, 'utf8').catch(() => ''));
    const owner = await read();
    if (owner?.token !== token) return false;
    const next = JSON.stringify({ ...owner, heartbeatAt: new Date().toISOString() }) + '\n';
    const tmp = path.join(lockDir, `.owner.json.hb-${rand()}`);
    try {
      await fs.promises.writeFile(tmp, next, { flag: 'wx', mode: 0o644 });
    } catch (err) {
      if (isCode(err, 'ENOENT')) return false; // the lock directory is gone
      throw err;
    }
    // Narrows the window in which a lock taken from us in the meantime would get our record back.
    if ((await read())?.token !== token) {
      await fs.promises.rm(tmp, { force: true });
      return false;
    }
    try {
      await fs.promises.rename(tmp, file);
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      if (isCode(err, 'ENOENT')) return false;
      throw err;
    }
    return true;
  }

  async unlock(target: string, token: string): Promise<boolean> {
    const dir = this.targetDir(target);
    const seen = await this.seeLock(path.join(dir, DIR_LAYOUT.lock));
    if (!seen || seen.owner?.token !== token) return false;
    const moved = await this.moveAside(dir, 'released', (m) => m.owner?.token === token);
    if (!moved.ok) return false;
    await fs.promises.rm(moved.aside, { recursive: true, force: true });
    await this.audit(dir, this.lockRecord('lock-released', target, moved.moved.owner as LockOwner));
    return true;
  }

  async lockState(target: string, staleAfterMs: number): Promise<LockState> {
    return stateOf(await this.seeLock(path.join(this.targetDir(target), DIR_LAYOUT.lock)), staleAfterMs);
  }

  /**
   * Operator override (`lock release`): a live lock (fresh heartbeat) is refused unless `force`. The lock is
   * renamed aside and checked to be the one judged (same owner record and, without force, still stale) before it
   * is removed; anything else is put back untouched. Audited with the previous owner's record.
   */
  async releaseAsOperator(
    target: string,
    opts: { operator: string; force: boolean; staleAfterMs: number },
  ): Promise<OperatorLockRelease> {
    let lock: LockState | undefined;
    try {
      const dir = this.targetDir(target);
      const seen = await this.seeLock(path.join(dir, DIR_LAYOUT.lock));
      lock = stateOf(seen, opts.staleAfterMs);
      if (!seen || !lock.held) return { host: target, outcome: 'free', lock };
      if (!lock.stale && !opts.force) return { host: target, outcome: 'refused-live', lock };
      const moved = await this.moveAside(
        dir,
        'operator',
        (m) => m.text === seen.text && (opts.force || m.ageMs >= opts.staleAfterMs),
      );
      if (!moved.ok)
        return { host: target, outcome: moved.error ? 'error' : 'changed', lock, error: moved.error };
      await fs.promises.rm(moved.aside, { recursive: true, force: true });
      await this.audit(dir, {
        time: new Date().toISOString(),
        action: 'lock-released',
        host: target,
        target,
        operator: opts.operator,
        forced: opts.force,
        stale: lock.stale,
        heartbeatAgeSeconds: lock.heartbeatAgeSeconds,
        from: this.hostname,
        via: 'homelab-deploy lock release',
        previous_owner: moved.moved.owner ?? (moved.moved.text.trim() || null),
      });
      return { host: target, outcome: 'released', lock };
    } catch (err) {
      return { host: target, outcome: 'error', lock, error: `${this.describe}: ${(err as Error).message}` };
    }
  }

  // ---- logs --------------------------------------------------------------------------------------------------

  async appendReleaseLog(target: string, entry: Record<string, unknown>): Promise<void> {
    const dir = await this.ensureDir(target);
    await appendLine(path.join(dir, DIR_LAYOUT.releaseLog), JSON.stringify(entry));
  }

  async appendAudit(target: string, entry: Record<string, unknown>): Promise<void> {
    const dir = await this.ensureDir(target);
    await this.audit(dir, entry);
  }

  async readReleaseLog(target: string): Promise<string> {
    return readOrEmpty(path.join(this.targetDir(target), DIR_LAYOUT.releaseLog));
  }

  async readAudit(target: string, n: number): Promise<string> {
    const text = await readOrEmpty(path.join(this.targetDir(target), DIR_LAYOUT.auditLog));
    const lines = text.split('\n').filter(Boolean);
    return lines.slice(-n).join('\n') + (lines.length && n > 0 ? '\n' : '');
  }

  // ---- rollback points and records ---------------------------------------------------------------------------

  async writeRollbackPoint(target: string, point: RollbackPoint): Promise<void> {
    await this.ensureDir(target);
    await writeFileAtomic(this.pointFile(target, point.release), JSON.stringify(point) + '\n');
  }

  async readRollbackPoint(target: string, release: string): Promise<RollbackPoint | undefined> {
    return readJson<RollbackPoint>(this.pointFile(target, release));
  }

  async listRollbackPoints(target: string, limit: number): Promise<RollbackPoint[]> {
    const dir = this.targetDir(target);
    const names = (await fs.promises.readdir(dir).catch(() => [] as string[])).filter((n) =>
      POINT_RE.test(n),
    );
    const dated = await Promise.all(
      names.map(async (n) => ({
        n,
        t: (await fs.promises.stat(path.join(dir, n)).catch(() => undefined))?.mtimeMs,
      })),
    );
    const newest = dated
      .filter((d) => d.t !== undefined)
      .sort((a, b) => (b.t as number) - (a.t as number))
      .slice(0, Math.max(0, limit));
    const points = await Promise.all(newest.map((d) => readJson<RollbackPoint>(path.join(dir, d.n))));
    return points.filter((p): p is RollbackPoint => p !== undefined);
  }

  async setNeedsAttention(target: string, record: Record<string, unknown> | null): Promise<void> {
    const file = path.join(this.targetDir(target), DIR_LAYOUT.needsAttention);
    if (record === null) {
      await fs.promises.rm(file, { force: true });
      return;
    }
    await this.ensureDir(target);
    await writeFileAtomic(file, JSON.stringify(record) + '\n');
  }

  async getNeedsAttention(target: string): Promise<Record<string, unknown> | undefined> {
    return readJson<Record<string, unknown>>(path.join(this.targetDir(target), DIR_LAYOUT.needsAttention));
  }
}

function stateOf(seen: LockSeen | undefined, staleAfterMs: number): LockState {
  if (!seen) return { held: false };
  const staleAfterSeconds = Math.ceil(staleAfterMs / 1000);
  const heartbeatAgeSeconds = Math.floor(seen.ageMs / 1000);
  return {
    held: true,
    owner: seen.owner,
    heartbeatAgeSeconds,
    // The same rule lock() applies, so an operator is never told "stale" about a lock a run would not take over.
    stale: seen.ageMs >= staleAfterMs,
    staleAfterSeconds,
  };
}

async function readOrEmpty(file: string): Promise<string> {
  try {
    return await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT')) return '';
    throw err;
  }
}

/** A JSON object file, or undefined when it is missing or not a JSON object (never half a file: see writeFileAtomic). */
async function readJson<T>(file: string): Promise<T | undefined> {
  const text = await readOrEmpty(file);
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' ? (v as T) : undefined;
  } catch {
    return undefined;
  }
}
