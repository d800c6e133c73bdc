import type { HostConfig } from '../../../config/types';
import { shQuote } from '../../../remote/quote';
import { LAYOUT } from '../layout';
import { auditLine, cd, currentName, ownsLock, type ScriptRun } from './common';
import { takenOverRecord } from './repair';

/** While a handed-over rollback runs on the host, it owns the lock: nobody else (a post step) releases it. */
export const HANDOVER_PID = `${LAYOUT.lock}/rollback.pid`;

/**
 * Seconds since the owner record (or the lock directory) was last touched: the holder's heartbeat. Only a held
 * lock asks, so its processes are not on the way of a lock that is free or ours.
 */
const LOCK_AGE = `$(( $(date +%s) - $(stat -c %Y ${LAYOUT.lockOwner} 2>/dev/null || stat -c %Y ${LAYOUT.lock} 2>/dev/null || date +%s) ))`;

/** Whether a handed-over rollback still runs (its pid file names a live process); builtins only. */
const HANDOVER_RUNNING = `{ [ -f ${HANDOVER_PID} ] && __hd_hp= && read -r __hd_hp < ${HANDOVER_PID} && kill -0 "$__hd_hp"; } 2>/dev/null`;

/**
 * Takes the host's deploy lock. The lock directory appears with its owner record already inside (built under a
 * temporary name, then renamed onto the lock path, which fails while a lock exists), so another run never sees a
 * lock without an owner. A lock whose owner record has not been refreshed for lock.stale_after is taken over only
 * when the config allows it, under a second mutex so two runs cannot both take over, and the takeover is audited
 * with the previous owner's record. Prints `lock=acquired|ours|taken-over`, or exits 3 with the holder's record.
 * The script ends through `return`, never `exit 0`, so it runs in the pre-flight's own shell (see runSteps); a free
 * lock costs two processes (mkdir, mv), one that is ours none.
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
    `__hd_take() { mkdir ${tmp} 2>/dev/null && printf '%s\\n' ${shQuote(owner)} > ${tmp}/owner.json && mv -T ${tmp} ${L} 2>/dev/null && return 0; rm -rf ${tmp}; return 1; }`,
    // The holder is named from the record read when the lock was found held, even if it has gone since.
    `__hd_held() { echo "held by:"; if [ -n "$o" ]; then printf '%s\\n' "$o"; else echo '(no owner record)'; fi; exit 3; }`,
    '__hd_lock() {',
    // A lock is never seen without its owner record, except for an instant while it changes hands: look again.
    'i=0; o=',
    'while :; do',
    // A lock with an owner record cannot be renamed over; only one without is worth the processes of a try.
    `  if [ ! -e ${LAYOUT.lockOwner} ] && __hd_take; then ${auditLine(run, host, 'lock-acquired')}; echo lock=acquired; return 0; fi`,
    `  if ${ownsLock(run)}; then echo lock=ours; return 0; fi`,
    '  o=$__hd_own',
    '  [ -n "$o" ] && break',
    // Still no owner record after half a second: a lock left so by something else; judge it by its age.
    '  [ $i -ge 10 ] && break',
    '  sleep 0.05; i=$((i + 1))',
    'done',
    `age=${LOCK_AGE}`,
    `echo "lock-age=$age"`,
    `[ "$age" -ge ${staleS} ] && [ ${run.config.lock.takeoverStale ? 'yes' : 'no'} = yes ] || __hd_held`,
    // The takeover mutex is held for milliseconds; one a killed run left behind would block takeovers for ever.
    `find ${LAYOUT.meta} -maxdepth 1 -name takeover -type d -mmin +1 -exec rmdir {} + 2>/dev/null`,
    // A rollback handed over to the host by a cancelled run holds the lock until it ends, heartbeat or not.
    `if ${HANDOVER_RUNNING}; then echo "a rollback handed over to the host is still running (pid $__hd_hp)"; __hd_held; fi`,
    `mkdir ${LAYOUT.meta}/takeover 2>/dev/null || __hd_held`,
    `age=${LOCK_AGE}`,
    // The previous owner's record stays for the repair step, which kills what that run still runs here.
    `if [ "$age" -ge ${staleS} ]; then prev=; { read -r prev < ${LAYOUT.lockOwner}; } 2>/dev/null; mv -T ${L} ${aside} 2>/dev/null && rm -rf ${aside}; if __hd_take; then rmdir ${LAYOUT.meta}/takeover; printf '%s\\n' "$prev" > ${takenOverRecord(run)}; ${auditLine(run, host, 'lock-taken-over', '"previous_owner":')}; echo lock=taken-over; return 0; fi; fi`,
    `rmdir ${LAYOUT.meta}/takeover; __hd_held`,
    '}',
    '__hd_lock',
  ].join('\n');
}

/**
 * Releases the lock only if this run owns it, and not while a rollback it handed over still runs. What this run
 * kept on the host goes with its lock, in the same `rm` as the released lock: an upload it never placed, an env
 * temp file, the undo of its env file (the cleanup has used it, or the host keeps this run's values). A release
 * costs two processes (the rename and that `rm`). Prints `released` and `current=<release>`, what this run left
 * the host on (read while the lock was still its own), so the run needs no further command to know it.
 */
export function releaseLockScript(run: ScriptRun, host: HostConfig): string {
  const released = `${LAYOUT.meta}/.released-${run.runToken}`;
  const tok = run.runToken;
  return [
    cd(host),
    `if ${HANDOVER_RUNNING}; then echo "busy: a rollback is still running"; exit 0; fi`,
    `if ${ownsLock(run)}; then`,
    `  ${currentName(host)}`,
    '  set --',
    `  for f in ${LAYOUT.releases}/.incoming-*-${tok} ${LAYOUT.shared}/.* ${LAYOUT.shared}/*; do case "$f" in ${LAYOUT.releases}/.incoming-*) { [ -e "$f" ] || [ -L "$f" ]; } && set -- "$@" "$f";; *.tmp-${tok}|*.undo-${tok}|*.undo-saved-${tok}|*.absent-${tok}|*.restore-${tok}) set -- "$@" "$f";; esac; done`,
    // Renamed aside first, then checked: what was renamed must still be ours (else it goes back where it was).
    `  if mv -T ${LAYOUT.lock} ${released} 2>/dev/null; then`,
    `    if ${ownsLock(run, `${released}/owner.json`)}; then rm -rf -- ${released} "$@" && ${auditLine(run, host, 'lock-released')} && echo released && echo "current=$cur"`,
    `    else { [ ! -e ${LAYOUT.lock} ] && mv -T ${released} ${LAYOUT.lock}; } 2>/dev/null || echo "could not put back the lock moved to ${released}" >&2; [ $# -eq 0 ] || rm -rf -- "$@"; echo not-ours; fi`,
    '  else [ $# -eq 0 ] || rm -rf -- "$@"; echo not-ours; fi',
    'else echo not-ours; fi',
  ].join('\n');
}

/**
 * Refreshes the owner record's heartbeatAt and its mtime, which other runs read to tell a live lock from a stale
 * one; the record is replaced atomically (one process: the rename; the record is read and rewritten by the shell).
 * Prints `lost` when the lock is no longer ours.
 */
export function heartbeatScript(run: ScriptRun, host: HostConfig, now: string): string {
  const key = '"heartbeatAt":"';
  return [
    cd(host),
    `${ownsLock(run)} || { echo lost; exit 0; }`,
    `r=$__hd_own; case "$r" in *${shQuote(key)}*) a=\${r%%${shQuote(key)}*}; b=\${r#*${shQuote(key)}}; b=\${b#*'"'}; r="$a"${shQuote(`${key}${now}"`)}"$b";; esac`,
    `printf '%s\\n' "$r" > ${LAYOUT.lockOwner}.hb && mv -f ${LAYOUT.lockOwner}.hb ${LAYOUT.lockOwner}`,
    'echo ours',
  ].join('\n');
}
