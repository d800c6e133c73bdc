import type { HostConfig } from '../../../config/types';
import { shQuote } from '../../../remote/quote';
import type { RunContext } from '../../../run/context';
import { LAYOUT } from '../layout';

/** What a host script needs of the run: its identity and release. Builders take only this, so tests can call them. */
export type ScriptRun = Pick<RunContext, 'release' | 'run' | 'runToken' | 'config'>;

export const cd = (host: HostConfig): string => `cd ${shQuote(host.path)} || exit 1`;

export { lockOwner } from '../../lock-owner';

/** The fields every host-side record carries: who, which run, which release. */
function recordBase(run: ScriptRun, host: HostConfig): Record<string, unknown> {
  return {
    time: new Date().toISOString(),
    host: host.name,
    release: run.release.id,
    commit: run.release.commit,
    actor: run.run.actor,
    runId: run.run.id,
    runUrl: run.run.url,
    token: run.runToken,
  };
}

/**
 * A JSON audit line appended on the host; `rawTail` lets a script splice a shell value into the record (e.g.
 * `"previous_owner":` followed by `$prev`, a record read on the host).
 */
export function auditLine(
  run: ScriptRun,
  host: HostConfig,
  action: string,
  rawTail?: string,
  extra: Record<string, unknown> = {},
): string {
  const { time, ...rest } = recordBase(run, host);
  const rec = JSON.stringify({ time, action, ...rest, ...extra });
  if (rawTail === undefined) return `printf '%s\\n' ${shQuote(rec)} >> ${LAYOUT.auditLog}`;
  return `printf '%s%s%s\\n' ${shQuote(rec.slice(0, -1) + ',' + rawTail)} "\${prev:-null}" '}' >> ${LAYOUT.auditLog}`;
}

/**
 * A release-log line; `rawTail` splices one shell value (`$dur`) into the record as the last field, for figures
 * only the host can measure.
 */
export function logLine(
  run: ScriptRun,
  host: HostConfig,
  entry: Record<string, unknown>,
  rawTail?: string,
): string {
  const line = JSON.stringify({ ...recordBase(run, host), ...entry });
  if (rawTail === undefined) return `printf '%s\\n' ${shQuote(line)} >> ${LAYOUT.releaseLog}`;
  return `printf '%s%s}\\n' ${shQuote(line.slice(0, -1) + ',' + rawTail)} "$dur" >> ${LAYOUT.releaseLog}`;
}

/** `grep` test that this run's token owns the lock; one process. */
export const ownsLock = (run: ScriptRun): string =>
  `grep -q ${shQuote(`"token":"${run.runToken}"`)} ${LAYOUT.lockOwner} 2>/dev/null`;
