import type { HostConfig } from '../../../config/types';
import { shQuote } from '../../../remote/quote';
import { LAYOUT } from '../layout';
import { auditLine, cd, ownsLock, type ScriptRun } from './common';

/** While a handed-over rollback runs on the host, it owns the lock: nobody else (a post step) releases it. */
export const HANDOVER_PID = `${LAYOUT.lock}/rollback.pid`;

/** Seconds since the owner record (or the lock directory) was last touched: the holder's heartbeat. */
const LOCK_AGE = `$(( $(date +%s) - $(stat -c %Y ${LAYOUT.lockOwner} 2>/dev/null || stat -c %Y ${LAYOUT.lock} 2>/dev/null || date +%s) ))`;

/**
 * Takes the host's deploy lock. The lock directory appears with its owner record already inside (built under a
 * temporary name, then renamed onto the lock path, which fails while a lock exists), so another run never sees a
 * lock without an owner. A lock whose owner record has not been refreshed for lock.stale_after is taken over only
 * when the config allows it, under a second mutex so two runs cannot both take over, and the takeover is audited
 * with the previous owner's record. Prints `lock=acquired|ours|taken-over`, or exits 3 with the holder's record.
 */
export function lockScript(run: ScriptRun, host: HostConfig, owner: string): string {
  const L = LAYOUT.lock;
  const tmp = `${L}.tmp-${run.runToken}`;
  const staleS = Math.ceil(run.config.lock.staleAfterMs / 1000);
  return [
    cd(host),
    `take() { mkdir ${tmp} 2>/dev/null && printf '%s\\n' ${shQuote(owner)} > ${tmp}/owner.json && mv -T ${tmp} ${L} 2>/dev/null && return 0; rm -rf ${tmp}; return 1; }`,
    `held() { echo "held by:"; cat ${LAYOUT.lockOwner} 2>/dev/null || echo '(no owner record)'; exit 3; }`,
    `if take; then ${auditLine(run, host, 'lock-acquired')}; echo lock=acquired; exit 0; fi`,
    `if ${ownsLock(run)}; then echo lock=ours; exit 0; fi`,
    `age=${LOCK_AGE}`,
    `echo "lock-age=$age"`,
    `[ "$age" -ge ${staleS} ] && [ ${run.config.lock.takeoverStale ? 'yes' : 'no'} = yes ] || held`,
    // The takeover mutex is held for milliseconds; one a killed run left behind would block takeovers for ever.
    `find ${LAYOUT.meta} -maxdepth 1 -name takeover -type d -mmin +1 -exec rmdir {} + 2>/dev/null`,
    `mkdir ${LAYOUT.meta}/takeover 2>/dev/null || held`,
    `age=${LOCK_AGE}`,
    `if [ "$age" -ge ${staleS} ]; then prev=$(tr -d '\\n' < ${LAYOUT.lockOwner} 2>/dev/null); rm -rf ${L}; if take; then rmdir ${LAYOUT.meta}/takeover; ${auditLine(run, host, 'lock-taken-over', '"previous_owner":')}; echo lock=taken-over; exit 0; fi; fi`,
    `rmdir ${LAYOUT.meta}/takeover; held`,
  ].join('\n');
}

/** Releases the lock only if this run owns it, and not while a rollback it handed over still runs. */
export function releaseLockScript(run: ScriptRun, host: HostConfig): string {
  return [
    cd(host),
    `if [ -f ${HANDOVER_PID} ] && kill -0 "$(cat ${HANDOVER_PID})" 2>/dev/null; then echo "busy: a rollback is still running"; exit 0; fi`,
    `if ${ownsLock(run)}; then rm -rf ${LAYOUT.lock} && ${auditLine(run, host, 'lock-released')} && echo released; else echo not-ours; fi`,
  ].join('\n');
}

/**
 * Refreshes the owner record's heartbeatAt and its mtime, which other runs read to tell a live lock from a stale
 * one; the record is replaced atomically. Prints `lost` when the lock is no longer ours.
 */
export function heartbeatScript(run: ScriptRun, host: HostConfig, now: string): string {
  return [
    cd(host),
    `${ownsLock(run)} || { echo lost; exit 0; }`,
    `sed -E ${shQuote(`s/"heartbeatAt":"[^"]*"/"heartbeatAt":"${now}"/`)} ${LAYOUT.lockOwner} > ${LAYOUT.lockOwner}.hb && mv -f ${LAYOUT.lockOwner}.hb ${LAYOUT.lockOwner}`,
    'echo ours',
  ].join('\n');
}
