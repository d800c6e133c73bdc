import type { HostConfig } from '../../../config/types';
import { shQuote } from '../../../remote/quote';
import { LAYOUT } from '../layout';
import { auditLine, cd, ownsLock, type ScriptRun } from './common';
import { takenOverRecord } from './repair';

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
  // A lock goes by a rename, never by emptying it in place: another run never meets a lock directory without its
  // owner record (nor replaces an empty one with its own).
  const aside = `${LAYOUT.meta}/.taken-${run.runToken}`;
  return [
    cd(host),
    `take() { mkdir ${tmp} 2>/dev/null && printf '%s\\n' ${shQuote(owner)} > ${tmp}/owner.json && mv -T ${tmp} ${L} 2>/dev/null && return 0; rm -rf ${tmp}; return 1; }`,
    // The holder is named from the record read when the lock was found held, even if it has gone since.
    `held() { echo "held by:"; if [ -n "$o" ]; then printf '%s\\n' "$o"; else echo '(no owner record)'; fi; exit 3; }`,
    // A lock is never seen without its owner record, except for an instant while it changes hands: look again.
    'i=0; o=',
    'while :; do',
    `  if take; then ${auditLine(run, host, 'lock-acquired')}; echo lock=acquired; exit 0; fi`,
    `  if ${ownsLock(run)}; then echo lock=ours; exit 0; fi`,
    `  o=$(cat ${LAYOUT.lockOwner} 2>/dev/null)`,
    '  [ -n "$o" ] && break',
    // Still no owner record after half a second: a lock left so by something else; judge it by its age.
    '  [ $i -ge 10 ] && break',
    '  sleep 0.05; i=$((i + 1))',
    'done',
    `age=${LOCK_AGE}`,
    `echo "lock-age=$age"`,
    `[ "$age" -ge ${staleS} ] && [ ${run.config.lock.takeoverStale ? 'yes' : 'no'} = yes ] || held`,
    // The takeover mutex is held for milliseconds; one a killed run left behind would block takeovers for ever.
    `find ${LAYOUT.meta} -maxdepth 1 -name takeover -type d -mmin +1 -exec rmdir {} + 2>/dev/null`,
    // A rollback handed over to the host by a cancelled run holds the lock until it ends, heartbeat or not.
    `if [ -f ${HANDOVER_PID} ] && kill -0 "$(cat ${HANDOVER_PID})" 2>/dev/null; then echo "a rollback handed over to the host is still running (pid $(cat ${HANDOVER_PID}))"; held; fi`,
    `mkdir ${LAYOUT.meta}/takeover 2>/dev/null || held`,
    `age=${LOCK_AGE}`,
    // The previous owner's record stays for the repair step, which kills what that run still runs here.
    `if [ "$age" -ge ${staleS} ]; then prev=$(tr -d '\\n' < ${LAYOUT.lockOwner} 2>/dev/null); mv -T ${L} ${aside} 2>/dev/null && rm -rf ${aside}; if take; then rmdir ${LAYOUT.meta}/takeover; printf '%s\\n' "$prev" > ${takenOverRecord(run)}; ${auditLine(run, host, 'lock-taken-over', '"previous_owner":')}; echo lock=taken-over; exit 0; fi; fi`,
    `rmdir ${LAYOUT.meta}/takeover; held`,
  ].join('\n');
}

/** Releases the lock only if this run owns it, and not while a rollback it handed over still runs. */
export function releaseLockScript(run: ScriptRun, host: HostConfig): string {
  const released = `${LAYOUT.meta}/.released-${run.runToken}`;
  return [
    cd(host),
    `if [ -f ${HANDOVER_PID} ] && kill -0 "$(cat ${HANDOVER_PID})" 2>/dev/null; then echo "busy: a rollback is still running"; exit 0; fi`,
    // What this run kept on the host goes with its lock: an upload it never placed, an env temp file, the undo
    // of its env file (the cleanup has used it, or the host keeps this run's values).
    `if ${ownsLock(run)}; then`,
    `  rm -rf ${LAYOUT.releases}/.incoming-*-${run.runToken}`,
    `  for f in ${LAYOUT.shared}/.* ${LAYOUT.shared}/*; do case "$f" in *.tmp-${run.runToken}|*.undo-${run.runToken}|*.absent-${run.runToken}) rm -f -- "$f";; esac; done`,
    // Renamed aside first, then checked: what was renamed must still be ours (else it goes back where it was).
    `  if mv -T ${LAYOUT.lock} ${released} 2>/dev/null; then`,
    `    if grep -q ${shQuote(`"token":"${run.runToken}"`)} ${released}/owner.json 2>/dev/null; then rm -rf ${released} && ${auditLine(run, host, 'lock-released')} && echo released`,
    `    else { [ ! -e ${LAYOUT.lock} ] && mv -T ${released} ${LAYOUT.lock}; } 2>/dev/null || echo "could not put back the lock moved to ${released}" >&2; echo not-ours; fi`,
    '  else echo not-ours; fi',
    'else echo not-ours; fi',
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
