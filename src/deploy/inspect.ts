import * as os from 'node:os';
import type { Config } from '../config/types';
import { ConnectionPool } from '../remote/pool';
import { mapLimit } from '../util/concurrency';
import { shQuote } from '../remote/quote';
import type { Redactor } from '../secrets/redact';
import { liveSnapshots, SNAPSHOT_RECORD, type SnapshotRecordLine } from '../snapshot/command';
import { parseOwner, type LockOwner, type RollbackPoint } from './host-ops';
import { LAYOUT } from './layout';

/** A host's deploy lock as an operator needs to judge it: who holds it and whether that run is still alive. */
export type LockState =
  | { held: false }
  | {
      held: true;
      /** The owner record; null when the lock directory has no readable one (a run killed mid-acquire). */
      owner: LockOwner | null;
      /** Seconds since the owner record was last touched: the holder's heartbeat. */
      heartbeatAgeSeconds: number;
      /** Heartbeat older than the config's lock.stale_after: the holder is most likely gone. */
      stale: boolean;
      staleAfterSeconds: number;
    };

export interface HostStatus {
  host: string;
  reachable: boolean;
  error?: string;
  /** The deploy path does not exist yet: nothing was ever deployed here. */
  empty?: boolean;
  current?: string | null;
  /** What a rollback of the current release returns to (its rollback point, else its release-log line). */
  previous?: string | null;
  lock?: LockState;
  /** The last lines of .homelab-deploy/releases.log, oldest first. */
  recent?: Record<string, unknown>[];
  /** Rollback points recorded on the host, newest first. */
  rollbackPoints?: RollbackPoint[];
  /** Complete releases on disk (rollback targets), newest first. */
  releases?: string[];
  /** Infrastructure snapshots the command provider made and has not deleted, oldest first. */
  snapshots?: SnapshotRecordLine[];
}

export interface InspectOptions {
  env: NodeJS.ProcessEnv;
  redactor: Redactor;
}

const MARK = '@@hd-inspect@@';
const RECENT = 10;

/** Shell that prints the lock's heartbeat age and owner record, if the lock exists; runs in the deploy path. */
const lockProbe = [
  `if [ -d ${LAYOUT.lock} ]; then`,
  `  echo "${MARK}lock-age=$(( $(date +%s) - $(stat -c %Y ${LAYOUT.lockOwner} 2>/dev/null || stat -c %Y ${LAYOUT.lock} 2>/dev/null || date +%s) ))"`,
  `  printf '${MARK}owner=%s\\n' "$(cat ${LAYOUT.lockOwner} 2>/dev/null | tr -d '\\n')"`,
  'fi',
].join('\n');

function marked(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith(MARK))
    .map((l) => l.slice(MARK.length));
}

const values = (lines: string[], key: string) =>
  lines.filter((l) => l.startsWith(key + '=')).map((l) => l.slice(key.length + 1));

function jsonLines<T>(texts: string[]): T[] {
  return texts.flatMap((t) => {
    try {
      const v = JSON.parse(t) as T;
      return v && typeof v === 'object' ? [v] : [];
    } catch {
      return [];
    }
  });
}

function lockState(config: Config, lines: string[]): LockState {
  const age = values(lines, 'lock-age')[0];
  if (age === undefined) return { held: false };
  const staleAfterSeconds = Math.ceil(config.lock.staleAfterMs / 1000);
  const heartbeatAgeSeconds = Number(age);
  return {
    held: true,
    owner: parseOwner(values(lines, 'owner')[0] ?? '') ?? null,
    heartbeatAgeSeconds,
    stale: heartbeatAgeSeconds >= staleAfterSeconds,
    staleAfterSeconds,
  };
}

/** "alice (run https://..., commit 0123456789ab, phase production) since ..." — who holds a lock. */
export function describeHolder(owner: LockOwner | null): string {
  if (!owner) return 'an unknown owner (no readable owner record)';
  return `${owner.actor ?? 'an unknown actor'} (run ${owner.runUrl ?? owner.runId ?? owner.token}, commit ${(owner.commit ?? '?').slice(0, 12)}, phase ${owner.phase}) since ${owner.startedAt}`;
}

async function onEachHost<T>(
  config: Config,
  hosts: string[],
  opts: InspectOptions,
  runToken: string,
  fn: (pool: ConnectionPool, host: string) => Promise<T>,
  onError: (host: string, message: string) => T,
): Promise<T[]> {
  const pool = new ConnectionPool(config, { ...opts, runToken });
  try {
    return await mapLimit(hosts, config.parallel, async (name) => {
      try {
        return await fn(pool, name);
      } catch (err) {
        return onError(name, opts.redactor.redact((err as Error).message));
      }
    });
  } finally {
    await pool.closeAll();
  }
}

/** Reads each host's state for operators (`status`, `lock status`): one round trip per host, no changes. */
export async function hostStatuses(
  config: Config,
  hosts: string[],
  opts: InspectOptions,
): Promise<HostStatus[]> {
  return onEachHost(
    config,
    hosts,
    opts,
    'inspect',
    async (pool, name): Promise<HostStatus> => {
      const h = config.hosts[name];
      const conn = await pool.get(name);
      const res = await conn.exec(
        [
          `cd ${shQuote(h.path)} 2>/dev/null || { echo "${MARK}empty"; exit 0; }`,
          `t=$(readlink ${LAYOUT.current} 2>/dev/null); echo "${MARK}current=\${t##*/}"`,
          lockProbe,
          `tail -n 200 ${LAYOUT.releaseLog} 2>/dev/null | sed 's/^/${MARK}log=/'`,
          `for f in $(ls -1t ${LAYOUT.meta}/rollback-point-*.json 2>/dev/null | head -n 10); do printf '${MARK}point=%s\\n' "$(tr -d '\\n' < "$f")"; done`,
          `ls -1t ${LAYOUT.releases}/*/${LAYOUT.releaseMarker} 2>/dev/null | sed 's#^${LAYOUT.releases}/##; s#/.*##; s/^/${MARK}release=/'`,
          `tail -n 500 ${SNAPSHOT_RECORD} 2>/dev/null | sed 's/^/${MARK}snap=/'`,
        ].join('\n'),
        { timeoutMs: 20_000 },
      );
      const lines = marked(res.stdout);
      if (lines.includes('empty'))
        return {
          host: name,
          reachable: true,
          empty: true,
          current: null,
          previous: null,
          lock: { held: false },
        };
      const current = values(lines, 'current')[0] || null;
      const logs = jsonLines<Record<string, unknown>>(values(lines, 'log'));
      const points = jsonLines<RollbackPoint>(values(lines, 'point'));
      const point = points.find((p) => p.release === current);
      const deployedLine = logs.filter((l) => l.result === 'deployed' && l.release === current).pop();
      const previous =
        point && point.previous !== undefined
          ? point.previous
          : ((deployedLine?.previous as string | null | undefined) ?? null);
      return {
        host: name,
        reachable: true,
        current,
        previous,
        lock: lockState(config, lines),
        recent: logs.slice(-RECENT),
        rollbackPoints: points,
        releases: values(lines, 'release'),
        snapshots: liveSnapshots(values(lines, 'snap').join('\n')),
      };
    },
    (host, error) => ({ host, reachable: false, error }),
  );
}

export interface LockReleaseResult {
  host: string;
  outcome: 'released' | 'free' | 'refused-live' | 'changed' | 'error';
  lock?: LockState;
  error?: string;
}

/**
 * Operator override (`lock release`). A lock whose heartbeat is fresh belongs to a run that is probably still
 * deploying, so it is refused unless `force`. The decision is re-checked on the host in the same script that
 * removes the lock: the owner record must be the one judged, and (without force) still stale. The lock
 * directory is first renamed aside, so a run that takes the lock a moment later gets a new directory we never
 * touch. Every release is appended to the host's audit log with the previous owner's record.
 */
export async function releaseLocks(
  config: Config,
  hosts: string[],
  opts: InspectOptions & { operator: string; force: boolean },
): Promise<LockReleaseResult[]> {
  return onEachHost(
    config,
    hosts,
    opts,
    'operator',
    async (pool, name): Promise<LockReleaseResult> => {
      const h = config.hosts[name];
      const conn = await pool.get(name);
      const cd = `cd ${shQuote(h.path)} 2>/dev/null || { echo "${MARK}empty"; exit 0; }`;
      const probe = await conn.exec([cd, lockProbe].join('\n'), { timeoutMs: 20_000 });
      const lines = marked(probe.stdout);
      const lock = lockState(config, lines);
      if (!lock.held) return { host: name, outcome: 'free', lock };
      if (!lock.stale && !opts.force) return { host: name, outcome: 'refused-live', lock };
      const ownerText = values(lines, 'owner')[0] ?? '';
      const record = JSON.stringify({
        time: new Date().toISOString(),
        action: 'lock-released',
        host: name,
        operator: opts.operator,
        forced: opts.force,
        stale: lock.stale,
        heartbeatAgeSeconds: lock.heartbeatAgeSeconds,
        from: os.hostname(),
        via: 'homelab-deploy lock release',
        previous_owner: lock.owner ?? (ownerText || null),
      });
      const aside = `${LAYOUT.meta}/lock.released-$$`;
      const staleS = lock.staleAfterSeconds;
      const r = await conn.exec(
        [
          cd,
          `[ -d ${LAYOUT.lock} ] || { echo "${MARK}result=free"; exit 0; }`,
          `owner=$(cat ${LAYOUT.lockOwner} 2>/dev/null | tr -d '\\n')`,
          `[ "$owner" = ${shQuote(ownerText)} ] || { echo "${MARK}result=changed"; exit 0; }`,
          opts.force
            ? 'true'
            : `age=$(( $(date +%s) - $(stat -c %Y ${LAYOUT.lockOwner} 2>/dev/null || stat -c %Y ${LAYOUT.lock} 2>/dev/null || date +%s) )); [ "$age" -ge ${staleS} ] || { echo "${MARK}result=changed"; exit 0; }`,
          `mv ${LAYOUT.lock} "${aside}" 2>/dev/null || { echo "${MARK}result=changed"; exit 0; }`,
          // Renamed something else than we judged (released and re-taken in between): put it back untouched.
          `if [ "$(cat "${aside}/owner.json" 2>/dev/null | tr -d '\\n')" != "$owner" ]; then { [ ! -e ${LAYOUT.lock} ] && mv "${aside}" ${LAYOUT.lock}; } || echo "could not put back the lock moved to ${h.path}/${aside}" >&2; echo "${MARK}result=changed"; exit 0; fi`,
          `rm -rf "${aside}" || exit 1`,
          `printf '%s\\n' ${shQuote(record)} >> ${LAYOUT.auditLog} || { echo "lock removed but ${h.path}/${LAYOUT.auditLog} is not writable" >&2; exit 1; }`,
          `echo "${MARK}result=released"`,
        ].join('\n'),
        { timeoutMs: 20_000 },
      );
      const result = values(marked(r.stdout), 'result')[0];
      if (r.code !== 0 || !result)
        return {
          host: name,
          outcome: 'error',
          lock,
          error: `releasing the lock in ${h.path} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-300)}`,
        };
      return { host: name, outcome: result as LockReleaseResult['outcome'], lock };
    },
    (host, error) => ({ host, outcome: 'error', error }),
  );
}

/** Every host's release log, for `history`; unreachable hosts are reported, not fatal. */
export async function readReleaseLogs(
  config: Config,
  hosts: string[],
  opts: InspectOptions,
): Promise<{ host: string; text?: string; error?: string }[]> {
  return onEachHost(
    config,
    hosts,
    opts,
    'history',
    async (pool, name): Promise<{ host: string; text?: string; error?: string }> => {
      const conn = await pool.get(name);
      const r = await conn.exec(
        `cat ${shQuote(`${config.hosts[name].path}/${LAYOUT.releaseLog}`)} 2>/dev/null; true`,
        { timeoutMs: 60_000 },
      );
      return { host: name, text: r.stdout };
    },
    (host, error) => ({ host, error }),
  );
}
