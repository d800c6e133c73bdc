import type { HostConfig } from '../../../config/types';
import { killPattern } from '../../../remote/connection';
import { shQuote } from '../../../remote/quote';
import { LAYOUT } from '../layout';
import { auditRecord, cd, type ScriptRun } from './common';

/**
 * What a run that died (SIGKILL, a lost runner) or lost its channels leaves on a host, found and undone by the
 * next run once it holds the lock: its processes, its half-uploaded release, its env temp and undo files, and a
 * release-log "started" line that never got an end (the host was left between two releases). Nothing of a live
 * run can be among them: the lock is ours, and a live run's commands have their SSH session above them.
 */

/** Where the lock step leaves the record of a lock it took over, for the repair step to read. */
export const takenOverRecord = (run: ScriptRun): string => `${LAYOUT.meta}/.taken-over-${run.runToken}`;

/**
 * awk over `ps -A -o pid= -o ppid= -o args=` that finds and undoes what dead runs left, with its inputs in the
 * environment (`hd_*`: `-v` would mangle backslashes in paths and records):
 * - the dead runs: the one whose lock was taken over (its token in the record at `hd_taken`), and the one whose
 *   deploy never finished: when the last release-log line that says where a deploy stands (tests records may come
 *   between "started" and its end) is a "started" line of another run, it is closed with a `failed` line (error
 *   `interrupted`) of the same run and audited;
 * - their commands, and every command of a homelab-deploy run (`timeout` or `sh -c` with an argv ending in
 *   `hd-<token>-<n>`, as SshConnection.exec starts them) that is not ours, works in this deploy path (its script
 *   names `hd_path` as a whole word: followed by a space, slash, quote, `;` or a newline, which ps shows as `?`) and
 *   has no sshd session above it (its client is gone: nobody will ever read its result); then everything below
 *   those. Other deploy paths on the same host (another project, another test) are left alone. They get TERM, and
 *   KILL after `hd_grace` polls of 0.2 s.
 * Prints a `repaired=<what>` line for each. One awk does it all, so a host with nothing to repair pays two
 * processes (ps and awk); the processes that kill and wait are only started when there is something to kill.
 */
export const REPAIR_AWK = [
  'function field(s, k,   v) { v = ""; while (match(s, "\\"" k "\\":\\"[^\\"]*\\"")) { v = substr(s, RSTART + length(k) + 4, RLENGTH - length(k) - 5); s = substr(s, RSTART + RLENGTH) } return v }',
  'function here(a,   i, r, c) { r = a; while ((i = index(r, path)) > 0) { c = substr(r, i + length(path), 1); if (c == "" || index(" /\\047?;", c)) return 1; r = substr(r, i + 1) } return 0 }',
  'function live(p,   q, i) { q = P[p]; for (i = 0; i < 64 && q > 1 && (q in P); i++) { if (A[q] ~ /^sshd(-session)?: /) return 1; q = P[q] } return 0 }',
  'BEGIN {',
  '  me = ENVIRON["hd_me"]; path = ENVIRON["hd_path"]; rlog = ENVIRON["hd_log"]; taken = ENVIRON["hd_taken"]',
  '  if ((getline l < taken) > 0) { t = field(l, "token"); if (t != "") D[t] = 1 }',
  '  close(taken)',
  '  last = ""',
  '  while ((getline l < rlog) > 0) if (l ~ /"event":"(deploy|rollback|cancelled)"/) last = l',
  '  close(rlog)',
  '  t = field(last, "token")',
  '  if (last ~ /"result":"started"/ && t != "" && t != me) {',
  '    D[t] = 1; fixed = last',
  '    sub(/^\\{"time":"[^"]*"/, "{\\"time\\":\\"" ENVIRON["hd_now"] "\\"", fixed)',
  '    sub(/"result":"started"/, "\\"result\\":\\"failed\\",\\"error\\":\\"interrupted\\",\\"repairedBy\\":\\"" me "\\"", fixed)',
  '    print fixed >> rlog; close(rlog)',
  '    print ENVIRON["hd_audit"] >> ENVIRON["hd_audit_log"]; close(ENVIRON["hd_audit_log"])',
  '    print "repaired=the deploy of " field(last, "release") " by run " t " never finished (the host was left between two releases); closed in the release log"',
  '  }',
  '}',
  '{ pid = $1; P[pid] = $2; a = $0; sub(/^[ \\t]*[0-9]+[ \\t]+[0-9]+[ \\t]*/, "", a); A[pid] = a;',
  '  w = $NF; if (w ~ /^hd-.+-[0-9]+$/ && a ~ /^(timeout|(\\/bin\\/)?sh -c) /) { t = w; sub(/^hd-/, "", t); sub(/-[0-9]+$/, "", t); T[pid] = t } }',
  'END {',
  '  for (p in T) if (T[p] != me && ((T[p] in D) || (here(A[p]) && !live(p)))) { K[p] = 1; R[T[p]] = 1 }',
  '  do { c = 0; for (x in P) if (!(x in K) && (P[x] in K)) { K[x] = 1; c = 1 } } while (c)',
  '  n = 0; pids = ""; for (x in K) { n++; pids = pids " " x }',
  '  if (n > 0) {',
  '    runs = ""; for (r in R) runs = runs r " "',
  '    system("kill -TERM" pids " 2>/dev/null")',
  '    left = pids; list = pids; gsub(/^ /, "", list); gsub(/ /, ",", list)',
  '    for (i = 0; i < ENVIRON["hd_grace"] + 0; i++) {',
  '      left = ""; cmd = "ps -o pid= -o stat= -p " list " 2>/dev/null"',
  '      while ((cmd | getline l) > 0) { split(l, f, " "); if (f[2] !~ /^Z/) left = left " " f[1] }',
  '      close(cmd)',
  '      if (left == "") break',
  '      system("sleep 0.2")',
  '    }',
  '    if (left != "") system("kill -KILL" left " 2>/dev/null")',
  '    print "repaired=killed " n " processes of runs " runs',
  '  }',
  '}',
].join('\n');

/**
 * The repair step of pre-flight, run once the lock is ours: sweeps env temp files and stale lock temp dirs, runs
 * REPAIR_AWK (processes of dead runs, an unfinished deploy), removes other runs' upload folders and env undo files.
 * Prints `repaired=<what>` lines for the report. Everything but the awk is shell globs and builtins: a removal
 * costs a process only where there is something to remove.
 */
export function repairScript(run: ScriptRun, host: HostConfig, opts: { graceS?: number } = {}): string {
  const envFile = run.config.secrets?.file;
  const tok = run.runToken;
  const taken = takenOverRecord(run);
  const notOurs = (glob: string) =>
    `for f in ${glob}; do [ -e "$f" ] || [ -L "$f" ] || continue; case "$f" in *-${tok}) ;; *) rm -rf -- "$f" && echo "repaired=removed $f (left by another run)";; esac; done`;
  const env = {
    hd_me: tok,
    hd_path: host.path,
    hd_taken: taken,
    hd_log: LAYOUT.releaseLog,
    hd_audit_log: LAYOUT.auditLog,
    hd_now: new Date().toISOString(),
    hd_audit: auditRecord(run, host, 'repair', { detail: 'closed an interrupted deploy' }),
    hd_grace: String((opts.graceS ?? 3) * 5),
  };
  return [
    cd(host),
    envFile
      ? `for f in ${LAYOUT.shared}/${shQuote(`${envFile}.tmp-`)}*; do [ -e "$f" ] && rm -rf -- "$f" && echo "repaired=removed $f"; done`
      : 'true',
    // Another run's lock temp dir lives for an instant while it takes the lock: only one older than a minute goes.
    `for f in ${LAYOUT.meta}/lock.tmp-*; do [ -e "$f" ] || continue; find ${LAYOUT.meta} -maxdepth 1 -name 'lock.tmp-*' -mmin +1 -print -exec rm -rf {} + 2>/dev/null | sed 's/^/repaired=removed /'; break; done`,
    `ps -A -o pid= -o ppid= -o args= 2>/dev/null | ${Object.entries(env)
      .map(([k, v]) => `${k}=${shQuote(v)}`)
      .join(' ')} awk ${shQuote(REPAIR_AWK)}`,
    `[ ! -e ${taken} ] || rm -f ${taken}`,
    notOurs(`${LAYOUT.releases}/.incoming-*`),
    envFile ? notOurs(`${LAYOUT.shared}/${shQuote(envFile)}.undo-*`) : 'true',
    envFile ? notOurs(`${LAYOUT.shared}/${shQuote(envFile)}.absent-*`) : 'true',
    envFile ? notOurs(`${LAYOUT.shared}/${shQuote(envFile)}.restore-*`) : 'true',
    `for f in ${LAYOUT.meta}/.switched-* ${LAYOUT.meta}/.rollback-* ${LAYOUT.meta}/.alive-*; do [ -e "$f" ] || continue; case "$f" in *-${tok}) ;; *) rm -f -- "$f";; esac; done`,
    'true',
  ].join('\n');
}

/**
 * Waits up to `waitS` seconds until no process of this run is left on the host (after a kill of all of them),
 * printing `gone`, or `left=<pids>`. The check's own shell and its `timeout` carry this run's token too: they are
 * left out by pid. pgrep writes to a file, not into $(...), whose subshell would carry the same command line and
 * match as well.
 */
export function waitGoneScript(run: ScriptRun, host: HostConfig, waitS: number): string {
  const f = `${host.path}/${LAYOUT.meta}/.alive-${run.runToken}`;
  return [
    `p=${shQuote(killPattern(run.runToken))}; f=${shQuote(f)}; k=${shQuote(`/.alive-${run.runToken}`)}; i=0`,
    'while :; do',
    '  pgrep -f "$p" > "$f"; c=; l=',
    '  while read -r x; do [ "$x" = "$$" ] || [ "$x" = "$PPID" ] || c="$c /proc/$x/cmdline"; done < "$f"',
    // Checks like this one for other hosts on the same machine carry the token too, and name the marker file: they
    // are not work of the run. grep -L lists the processes whose command line does not name it (gone ones drop out).
    '  [ -z "$c" ] || for x in $(grep -aLF "$k" $c 2>/dev/null); do x=${x#/proc/}; l="$l ${x%/cmdline}"; done',
    '  [ -z "$l" ] && { rm -f "$f"; echo gone; exit 0; }',
    `  [ $i -ge ${waitS * 5} ] && { rm -f "$f"; echo "left=$l"; exit 0; }`,
    '  sleep 0.2; i=$((i + 1))',
    'done',
  ].join('\n');
}

/**
 * After a write failed: removes what was half written and prints `free=<bytes>` for the filesystem holding `dir`,
 * so the error can say whether the disk is full and with what figures.
 */
export function freeSpaceScript(dir: string, remove: string[]): string {
  return [
    remove.length ? `rm -rf -- ${remove.map(shQuote).join(' ')}` : 'true',
    `set -- $(df -Pk ${shQuote(dir)} 2>/dev/null | { read -r _; read -r l; echo "$l"; })`,
    '[ -n "$4" ] && echo "free=$(( $4 * 1024 ))"',
    'true',
  ].join('\n');
}
