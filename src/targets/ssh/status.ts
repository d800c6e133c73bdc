import * as os from 'node:os';
import type { Config, HostConfig } from '../../config/types';
import { shQuote } from '../../remote/quote';
import type { RunContext } from '../../run/context';
import { liveSnapshots, SNAPSHOT_RECORD } from '../../snapshot/command';
import type { Shell } from '../../util/shell';
import type { LockState, OperatorLockRelease, RollbackFacts, RollbackPoint, TargetStatus } from '../target';
import { currentName } from './scripts/common';
import { LAYOUT } from './layout';
import { parseOwner } from './owner';

/** Reading a host's state for operators (`status`, `lock status`, `lock release`): one round trip, no changes. */

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

export async function readStatus(
  run: Pick<RunContext, 'config'>,
  h: HostConfig,
  shell: Shell,
): Promise<TargetStatus> {
  const config = run.config;
  const name = h.name;
  const res = await shell.exec(
    [
      `cd ${shQuote(h.path)} 2>/dev/null || { echo "${MARK}empty"; exit 0; }`,
      `t=$(readlink ${LAYOUT.current} 2>/dev/null); echo "${MARK}current=\${t##*/}"`,
      lockProbe,
      `tail -n 200 ${LAYOUT.releaseLog} 2>/dev/null | sed 's/^/${MARK}log=/'`,
      `for f in $(ls -1t ${LAYOUT.meta}/rollback-point-*.json 2>/dev/null | head -n 10); do printf '${MARK}point=%s\\n' "$(tr -d '\\n' < "$f")"; done`,
      `ls -1t ${LAYOUT.releases}/*/${LAYOUT.releaseMarker} 2>/dev/null | sed 's#^${LAYOUT.releases}/##; s#/.*##; s/^/${MARK}release=/'`,
      `tail -n 500 ${SNAPSHOT_RECORD} 2>/dev/null | sed 's/^/${MARK}snap=/'`,
      `[ -f ${LAYOUT.needsAttention} ] && printf '${MARK}attention=%s\\n' "$(tr -d '\\n' < ${LAYOUT.needsAttention})"`,
      'true',
    ].join('\n'),
    { timeoutMs: 20_000 },
  );
  const lines = marked(res.stdout);
  if (lines.includes('empty'))
    return {
      host: name,
      kind: 'ssh',
      reachable: true,
      empty: true,
      current: null,
      previous: null,
      lock: { held: false },
    };
  const current = values(lines, 'current')[0] || null;
  const logs = jsonLines<Record<string, unknown>>(values(lines, 'log'));
  const points = jsonLines<RollbackPoint>(values(lines, 'point'));
  const previous = previousOf(current, points, logs);
  return {
    host: name,
    kind: 'ssh',
    reachable: true,
    current,
    previous,
    lock: lockState(config, lines),
    recent: logs.slice(-RECENT),
    rollbackPoints: points,
    releases: values(lines, 'release'),
    snapshots: liveSnapshots(values(lines, 'snap').join('\n')),
    needsAttention:
      jsonLines<Record<string, unknown>>(values(lines, 'attention'))[0] ??
      interruptedDeploy(logs, lockState(config, lines)),
  };
}

/**
 * What a rollback of `current` returns to: its rollback point, or else the release log's line that deployed it.
 */
function previousOf(
  current: string | null,
  points: RollbackPoint[],
  logs: Record<string, unknown>[],
): string | null {
  const point = points.find((p) => p.release === current);
  if (point && point.previous !== undefined) return point.previous;
  const deployedLine = logs.filter((l) => l.result === 'deployed' && l.release === current).pop();
  return (deployedLine?.previous as string | null | undefined) ?? null;
}

/**
 * What a rollback by hand must know, and no more: the current release, what its rollback returns to, and the
 * releases on the host. Shell builtins but for the release log's tail, which is read only where the current
 * release has no rollback point: one process where `status` starts a dozen (the manual rollback of a fleet
 * reads this on every host).
 */
export async function readRollbackFacts(h: HostConfig, shell: Shell): Promise<RollbackFacts> {
  const point = `${LAYOUT.meta}/rollback-point-"$cur".json`;
  const res = await shell.exec(
    [
      `cd ${shQuote(h.path)} 2>/dev/null || { echo "${MARK}empty"; exit 0; }`,
      currentName(h),
      `echo "${MARK}current=$cur"`,
      `if [ -n "$cur" ] && [ -f ${point} ]; then while read -r l || [ -n "$l" ]; do printf '${MARK}point=%s\\n' "$l"; done < ${point}`,
      `else tail -n 200 ${LAYOUT.releaseLog} 2>/dev/null | sed 's/^/${MARK}log=/'; fi`,
      `for f in ${LAYOUT.releases}/*/${LAYOUT.releaseMarker}; do [ -e "$f" ] || continue; f=\${f#${LAYOUT.releases}/}; printf '${MARK}release=%s\\n' "\${f%%/*}"; done`,
      'true',
    ].join('\n'),
    { timeoutMs: 20_000 },
  );
  const lines = marked(res.stdout);
  if (lines.includes('empty')) return { current: null, previous: null, releases: [] };
  const current = values(lines, 'current')[0] || null;
  const previous = previousOf(
    current,
    jsonLines<RollbackPoint>(values(lines, 'point')),
    jsonLines<Record<string, unknown>>(values(lines, 'log')),
  );
  return { current, previous, releases: values(lines, 'release') };
}

/**
 * A host left between two releases: its release log ends with a deploy's "started" line (written just before
 * `current` moves) and no run is still at it (the lock is gone, stale, or another run's). The run that started it
 * died or lost the host before it could record a failed rollback there; the next deploy repairs it.
 */
export function interruptedDeploy(
  logs: Record<string, unknown>[],
  lock: LockState,
): Record<string, unknown> | undefined {
  // The last line that says where a deploy stands (tests records may come between "started" and its end).
  const last = logs.filter((l) => ['deploy', 'rollback', 'cancelled'].includes(String(l.event))).pop();
  if (!last || last.result !== 'started') return undefined;
  if (lock.held && !lock.stale && lock.owner?.token === last.token) return undefined;
  return {
    reason: 'interrupted-deploy',
    time: last.time,
    release: last.release,
    previous: last.previous ?? null,
    runId: last.runId,
    runUrl: last.runUrl,
    token: last.token,
    detail: `the deploy of ${String(last.release)} started at ${String(last.time)} never finished: the host may run either release or a mix; the next deploy repairs it, or roll back by hand`,
  };
}

/**
 * Operator override (`lock release`). A lock whose heartbeat is fresh belongs to a run that is probably still
 * deploying, so it is refused unless `force`. The decision is re-checked on the host in the same script that
 * removes the lock: the owner record must be the one judged, and (without force) still stale. The lock
 * directory is first renamed aside, so a run that takes the lock a moment later gets a new directory we never
 * touch. Every release is appended to the host's audit log with the previous owner's record.
 */
export async function operatorReleaseLock(
  run: Pick<RunContext, 'config'>,
  h: HostConfig,
  shell: Shell,
  opts: { operator: string; force: boolean },
): Promise<OperatorLockRelease> {
  const config = run.config;
  const name = h.name;
  const cd = `cd ${shQuote(h.path)} 2>/dev/null || { echo "${MARK}empty"; exit 0; }`;
  const probe = await shell.exec([cd, lockProbe].join('\n'), { timeoutMs: 20_000 });
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
  const r = await shell.exec(
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
  return { host: name, outcome: result as OperatorLockRelease['outcome'], lock };
}
