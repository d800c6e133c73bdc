import type { HostConfig } from '../../../config/types';
import { shQuote } from '../../../remote/quote';
import type { RunContext } from '../../../run/context';
import { LAYOUT } from '../layout';

/** What a host script needs of the run: its identity and release. Builders take only this, so tests can call them. */
export type ScriptRun = Pick<RunContext, 'release' | 'run' | 'runToken' | 'config'>;

export const cd = (host: HostConfig): string => `cd ${shQuote(host.path)} || exit 1`;

/**
 * Sets `$cur` to the release `current` names (empty when there is none), from the deploy path and back there:
 * `cd -P` resolves the link without a process; only a link to nowhere costs a readlink.
 */
export const currentName = (host: HostConfig): string =>
  `cur=; if cd -P ${LAYOUT.current} 2>/dev/null; then cur=\${PWD##*/}; ${cd(host)}; elif [ -L ${LAYOUT.current} ]; then cur=$(readlink ${LAYOUT.current}); cur=\${cur##*/}; fi`;

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

/** The JSON record of an audit line (see auditLine), for scripts that write it by other means than printf. */
export function auditRecord(
  run: ScriptRun,
  host: HostConfig,
  action: string,
  extra: Record<string, unknown> = {},
): string {
  const { time, ...rest } = recordBase(run, host);
  return JSON.stringify({ time, action, ...rest, ...extra });
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
  const rec = auditRecord(run, host, action, extra);
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

/**
 * Shell test that this run's token owns the lock, with builtins only (the owner record is one line). Leaves the
 * record in `$__hd_own` for the caller to quote.
 */
export const ownsLock = (run: ScriptRun, file: string = LAYOUT.lockOwner): string =>
  `{ __hd_own=; read -r __hd_own < ${file}; case "$__hd_own" in *${shQuote(`"token":"${run.runToken}"`)}*) true;; *) false;; esac; } 2>/dev/null`;
