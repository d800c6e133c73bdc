import type { HostConfig } from '../../../config/types';
import { killPattern } from '../../../remote/connection';
import { shQuote } from '../../../remote/quote';
import { LAYOUT } from '../layout';
import { auditLine, cd, type ScriptRun } from './common';

/**
 * What a run that died (SIGKILL, a lost runner) or lost its channels leaves on a host, found and undone by the
 * next run once it holds the lock: its processes, its half-uploaded release, its env temp and undo files, and a
 * release-log "started" line that never got an end (the host was left between two releases). Nothing of a live
 * run can be among them: the lock is ours, and a live run's commands have their SSH session above them.
 */

/** Where the lock step leaves the record of a lock it took over, for the repair step to read. */
export const takenOverRecord = (run: ScriptRun): string => `${LAYOUT.meta}/.taken-over-${run.runToken}`;

/**
 * awk over `ps -A -o pid= -o ppid= -o args=`: every command of a homelab-deploy run (`timeout` or `sh -c` with
 * an argv ending in `hd-<token>-<n>`, as SshConnection.exec starts them) that is not ours and either belongs to a run in `dead` (space-separated tokens), or works in
 * this deploy path (its script names `path` as a whole word: followed by a space, slash, quote, `;` or a newline,
 * which ps shows as `?`) and has no sshd session
 * above it (its client is gone: nobody will ever read its result); then everything below those. Other deploy
 * paths on the same host (another project, another test) are left alone. Prints `root <pid> <token>` for each
 * such command and `pid <pid>` for each process to kill.
 */
export const ORPHANS_AWK = [
  'BEGIN { n = split(dead, d, " "); for (i = 1; i <= n; i++) D[d[i]] = 1 }',
  '{ pid = $1; P[pid] = $2; a = $0; sub(/^[ \\t]*[0-9]+[ \\t]+[0-9]+[ \\t]*/, "", a); A[pid] = a;',
  '  w = $NF; if (w ~ /^hd-.+-[0-9]+$/ && a ~ /^(timeout|(\\/bin\\/)?sh -c) /) { t = w; sub(/^hd-/, "", t); sub(/-[0-9]+$/, "", t); T[pid] = t } }',
  'function here(a,   i, r, c) { r = a; while ((i = index(r, path)) > 0) { c = substr(r, i + length(path), 1); if (c == "" || index(" /\\047?;", c)) return 1; r = substr(r, i + 1) } return 0 }',
  'function live(p,   q, i) { q = P[p]; for (i = 0; i < 64 && q > 1 && (q in P); i++) { if (A[q] ~ /^sshd(-session)?: /) return 1; q = P[q] } return 0 }',
  'END {',
  '  for (p in T) if (T[p] != me && ((T[p] in D) || (here(A[p]) && !live(p)))) { K[p] = 1; printf "root %s %s\\n", p, T[p] }',
  '  do { c = 0; for (x in P) if (!(x in K) && (P[x] in K)) { K[x] = 1; c = 1 } } while (c)',
  '  for (x in K) printf "pid %s\\n", x',
  '}',
].join('\n');

/**
 * Shell that kills what ORPHANS_AWK finds (TERM, then KILL after `graceS`) and prints `killed=<n> <tokens>` when
 * it found any (after `prefix`). `$dead` must hold the tokens of runs known to be gone.
 */
export function killOrphansScript(
  run: ScriptRun,
  host: HostConfig,
  opts: { graceS?: number; prefix?: string } = {},
): string {
  const graceS = opts.graceS ?? 3;
  const vars = [`-v me=${shQuote(run.runToken)}`, '-v dead="$dead"', `-v path=${shQuote(host.path)}`].join(
    ' ',
  );
  return [
    `o=$(ps -A -o pid= -o ppid= -o args= 2>/dev/null | awk ${vars} ${shQuote(ORPHANS_AWK)})`,
    `k=$(printf '%s\\n' "$o" | sed -n 's/^pid //p' | tr '\\n' ' ')`,
    'if [ -n "$k" ]; then',
    `  runs=$(printf '%s\\n' "$o" | sed -n 's/^root [0-9]* //p' | sort -u | tr '\\n' ' ')`,
    '  kill -TERM $k 2>/dev/null',
    '  i=0',
    `  while [ $i -lt ${graceS * 5} ]; do l=$(ps -o pid= -o stat= -p "$(echo $k | tr ' ' ',')" 2>/dev/null | awk '$2 !~ /^Z/ {print $1}'); [ -n "$l" ] || break; sleep 0.2; i=$((i + 1)); done`,
    '  [ -z "$l" ] || kill -KILL $l 2>/dev/null',
    `  echo "${opts.prefix ?? 'killed='}$(echo $k | wc -w) processes of runs $runs"`,
    'fi',
  ].join('\n');
}

/**
 * The repair step of pre-flight, run once the lock is ours. Sweeps env temp files and stale lock temp dirs (as
 * before), then: kills the processes of the run whose lock was taken over, of the run whose deploy never finished
 * and of any run whose SSH session is gone; removes other runs' upload folders and env undo files; closes an
 * unfinished "started" release-log line with a `failed` (error `interrupted`) line of the same run, so history and
 * status see how that deploy ended. Prints `repaired=<what>` lines for the report.
 */
export function repairScript(run: ScriptRun, host: HostConfig): string {
  const envFile = run.config.secrets?.file;
  const tok = run.runToken;
  const taken = takenOverRecord(run);
  const tokenOf = `sed -n 's/.*"token":"\\([^"]*\\)".*/\\1/p' | head -n 1`;
  const releaseOf = `sed -n 's/.*"release":"\\([^"]*\\)".*/\\1/p' | head -n 1`;
  const notOurs = (glob: string) =>
    `for f in ${glob}; do [ -e "$f" ] || continue; case "$f" in *-${tok}) ;; *) rm -rf -- "$f" && echo "repaired=removed $f (left by another run)";; esac; done`;
  return [
    cd(host),
    `find ${LAYOUT.shared} ${LAYOUT.meta} -maxdepth 1 \\( ${envFile ? `-name ${shQuote(`${envFile}.tmp-*`)} -o ` : ''}\\( -name 'lock.tmp-*' -mmin +1 \\) \\) -print -exec rm -rf {} + 2>/dev/null | sed 's/^/repaired=removed /'`,
    'dead=',
    `if [ -f ${taken} ]; then t=$(${tokenOf} < ${taken}); dead="$dead $t"; rm -f ${taken}; fi`,
    // The last line that says where a deploy stands (tests records may come between "started" and its end).
    `last=$(grep -E '"event":"(deploy|rollback|cancelled)"' ${LAYOUT.releaseLog} 2>/dev/null | tail -n 1)`,
    `case "$last" in *'"result":"started"'*)`,
    `  t=$(printf '%s\\n' "$last" | ${tokenOf})`,
    `  if [ -n "$t" ] && [ "$t" != ${shQuote(tok)} ]; then`,
    '    dead="$dead $t"',
    `    rel=$(printf '%s\\n' "$last" | ${releaseOf})`,
    `    now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)`,
    `    printf '%s\\n' "$last" | sed -e "s/^{\\"time\\":\\"[^\\"]*\\"/{\\"time\\":\\"$now\\"/" -e 's/"result":"started"/"result":"failed","error":"interrupted","repairedBy":"${tok}"/' >> ${LAYOUT.releaseLog}`,
    `    echo "repaired=the deploy of $rel by run $t never finished (the host was left between two releases); closed in the release log"`,
    `    ${auditLine(run, host, 'repair', undefined, { detail: 'closed an interrupted deploy' })}`,
    '  fi;;',
    'esac',
    killOrphansScript(run, host, { prefix: 'repaired=killed ' }),
    notOurs(`${LAYOUT.releases}/.incoming-*`),
    envFile ? notOurs(`${LAYOUT.shared}/${shQuote(envFile)}.undo-*`) : 'true',
    envFile ? notOurs(`${LAYOUT.shared}/${shQuote(envFile)}.absent-*`) : 'true',
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
