/**
 * The baseline's deploy (and rollback) of one host, step by step: each exec step is one remote command on its
 * own channel, the env file is one SFTP write. The commands are built here, apart from the code that sends them.
 * Layout under the host's folder H: H/releases/<id>/REVISION, H/current -> releases/<id>, H/.env (0600),
 * H/previous (the release current pointed to before), H/.deploy.lock while a deploy holds the host.
 *
 * A deploy plan may add safety properties of homelab-deploy (job.ts PROPERTIES), each as extra commands or SFTP
 * requests in the same plain style, so scenario property-cost can say what each one costs. What they leave on
 * the host: H/.deploy.lock/owner.json while locked (lock-owner), H/.env.before-<release> (atomic-env),
 * H/rollback-point-<release>.json and releases/<id>/.release.json (rollback-point), H/releases.log
 * (release-log), H/audit.log (audit).
 */
import type { Property } from './job';

export const LOCK = '.deploy.lock';
export const ENV_FILE = '.env';
export const PREVIOUS = 'previous';
export const OWNER_FILE = 'owner.json';
export const RELEASE_LOG = 'releases.log';
export const AUDIT_LOG = 'audit.log';
export const RELEASE_MARKER = '.release.json';
/** Where the lock goes while its owner is checked before removal: renamed aside, so no other run can take it meanwhile. */
export const releasedLock = (runToken: string): string => `.deploy.released-${runToken}`;
export const rollbackPointFile = (release: string): string => `rollback-point-${release}.json`;
export const envBefore = (release: string): string => `${ENV_FILE}.before-${release}`;

/** The product's defaults: a command's limit (ssh.command_timeout), timeout's grace before KILL, keep_releases. */
export const REMOTE_TIMEOUT_S = 600;
export const KILL_AFTER_S = 3;
export const KEEP_RELEASES = 5;

/** What earlier steps of the same host printed, by step name: a later command may depend on it. */
export type SeenOutput = ReadonlyMap<string, string>;

export type Step =
  | {
      name: string;
      kind: 'exec';
      command: string | ((seen: SeenOutput) => string);
      check(stdout: string, seen: SeenOutput): string | undefined;
    }
  /** the env file: one SFTP open with mode, write and fchmod pipelined */
  | { name: string; kind: 'upload'; path: string; mode: number }
  /** the env file as atomic-env writes it (deploy.ts atomicUpload): temp, fsync, read back, keep, rename, dir fsync */
  | {
      name: string;
      kind: 'atomic-upload';
      path: string;
      tmp: string;
      saved: string;
      dir: string;
      mode: number;
    }
  /**
   * a small file written over SFTP in one open, its content made from what earlier steps printed; `renameTo`
   * then puts it in place with posix-rename
   */
  | {
      name: string;
      kind: 'write-file';
      path: string;
      mode: number;
      data: (seen: SeenOutput) => string;
      renameTo?: string;
    };

/** What one host's deploy needs to build its steps. */
export interface DeployPlan {
  dir: string;
  host: string;
  release: string;
  minFreeKib: number;
  properties: readonly Property[];
  /** this run's id: in the owner record, the logs and (remote-timeout) every command's token */
  runToken: string;
  /** the time records carry: the client's, as homelab-deploy's records do (no `date` on the host) */
  now: string;
}

const RELEASE_NAME = /^[A-Za-z0-9._-]+$/;

export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const ok = () => undefined;

/** The last argv word of a command under remote-timeout, the same shape as homelab-deploy's (hd-<token>-<n>). */
export const commandToken = (runToken: string, seq: number): string => `hd-${runToken}-${seq}`;

/**
 * A command as homelab-deploy sends every script: `exec` keeps the login shell out of the way, timeout bounds
 * the command on the host and signals its whole process group, and the token as the last argv word of both
 * timeout and sh lets a later run find (repair-check) or kill what a lost channel left running.
 */
export function underTimeout(command: string, token: string, seconds = REMOTE_TIMEOUT_S): string {
  return `exec timeout -k ${KILL_AFTER_S} ${seconds} sh -c ${shQuote(command)} ${token}`;
}

export function deploySteps(p: DeployPlan): Step[] {
  const has = (x: Property) => p.properties.includes(x);
  return [
    freeDiskStep(p),
    ...(has('lock-owner') ? ownerLockSteps(p) : plainLockSteps(p.dir)),
    ...(has('repair-check') ? [repairStep(p)] : []),
    envStep(p),
    recordPreviousStep(p.dir, has('rollback-point') || has('release-log')),
    writeReleaseStep(p),
    ...(has('rollback-point') ? rollbackPointSteps(p) : []),
    switchStep(p.dir, p.release),
    ...(has('release-log') ? [releaseLogStep(p)] : []),
    healthStep(p.dir, p.release),
    unlockStep(p),
  ];
}

function freeDiskStep(p: DeployPlan): Step {
  return {
    name: 'free disk',
    kind: 'exec',
    command: `df -Pk ${shQuote(p.dir)}`,
    check(out) {
      const avail = Number(out.trim().split('\n')[1]?.trim().split(/\s+/)[3]);
      return avail >= p.minFreeKib ? undefined : `${avail} KiB free, need ${p.minFreeKib}`;
    },
  };
}

function plainLockSteps(dir: string): Step[] {
  const H = shQuote(dir);
  return [
    { name: 'lock free', kind: 'exec', command: `test ! -e ${H}/${LOCK}`, check: ok },
    { name: 'lock', kind: 'exec', command: `mkdir ${H}/${LOCK}`, check: ok },
  ];
}

/** The owner record: who holds the lock, without a pid (a pid means nothing on another machine). */
export function ownerRecord(p: DeployPlan): string {
  return JSON.stringify({ run: p.runToken, host: p.host, release: p.release, time: p.now });
}

/**
 * lock-owner: a held lock is reported with its owner and the age of its record, which is what a stale check
 * judges (homelab-deploy takes over a stale lock only when configured to, by default never). A free lock costs
 * builtins only. The lock then appears with its owner record already inside (built under a temp name, renamed
 * in; a rename onto a lock that holds a record fails), so no other run ever sees a lock without an owner.
 */
export function ownerLockSteps(p: DeployPlan): Step[] {
  const H = shQuote(p.dir);
  const L = `${H}/${LOCK}`;
  const tmp = `${H}/${shQuote(`${LOCK}.tmp-${p.runToken}`)}`;
  return [
    {
      name: 'lock free',
      kind: 'exec',
      command: [
        `if [ -e ${L} ]; then o=; { read -r o < ${L}/${OWNER_FILE}; } 2>/dev/null`,
        `age=$(( $(date +%s) - $(stat -c %Y ${L}/${OWNER_FILE} 2>/dev/null || stat -c %Y ${L}) ))`,
        `echo "lock held for \${age}s by: \${o:-(no owner record)}"; exit 3; fi`,
      ].join('\n'),
      check: ok,
    },
    {
      name: 'lock',
      kind: 'exec',
      command: `mkdir ${tmp} && printf '%s\\n' ${shQuote(ownerRecord(p))} > ${tmp}/${OWNER_FILE} && mv -T ${tmp} ${L} || { rm -rf ${tmp}; echo 'lock taken by another run meanwhile' >&2; exit 3; }`,
      check: ok,
    },
  ];
}

/**
 * repair-check, after the lock is ours: one ps, one awk. The awk picks the commands of other homelab-deploy runs
 * (timeout or sh -c whose last argv word is hd-<token>-<n>, token not ours) that name this deploy path and have
 * no sshd session above them (their client is gone), and everything below those; it signals them only when it
 * found any, so a clean host pays the two processes and nothing more. As homelab-deploy's repair does.
 */
export const REPAIR_AWK = [
  'function here(a,   i, r, c) { r = a; while ((i = index(r, path)) > 0) { c = substr(r, i + length(path), 1); if (c == "" || index(" /\\047?;", c)) return 1; r = substr(r, i + 1) } return 0 }',
  'function live(p,   q, i) { q = P[p]; for (i = 0; i < 64 && q > 1 && (q in P); i++) { if (A[q] ~ /^sshd(-session)?: /) return 1; q = P[q] } return 0 }',
  'BEGIN { me = ENVIRON["hd_me"]; path = ENVIRON["hd_path"] }',
  '{ pid = $1; P[pid] = $2; a = $0; sub(/^[ \\t]*[0-9]+[ \\t]+[0-9]+[ \\t]*/, "", a); A[pid] = a',
  '  w = $NF; if (w ~ /^hd-.+-[0-9]+$/ && a ~ /^(timeout|(\\/bin\\/)?sh -c) /) { t = w; sub(/^hd-/, "", t); sub(/-[0-9]+$/, "", t); T[pid] = t } }',
  'END {',
  '  for (p in T) if (T[p] != me && here(A[p]) && !live(p)) K[p] = 1',
  '  do { c = 0; for (x in P) if (!(x in K) && (P[x] in K)) { K[x] = 1; c = 1 } } while (c)',
  '  n = 0; pids = ""; for (x in K) { n++; pids = pids " " x }',
  '  if (n > 0) { system("kill -TERM" pids " 2>/dev/null"); print "repaired=killed " n " processes of earlier runs" }',
  '}',
].join('\n');

export function repairStep(p: DeployPlan): Step {
  return {
    name: 'repair check',
    kind: 'exec',
    command: `ps -A -o pid= -o ppid= -o args= 2>/dev/null | hd_me=${shQuote(p.runToken)} hd_path=${shQuote(p.dir)} awk ${shQuote(REPAIR_AWK)}`,
    check: ok,
  };
}

function envStep(p: DeployPlan): Step {
  const file = `${p.dir}/${ENV_FILE}`;
  if (!p.properties.includes('atomic-env'))
    return { name: 'env file', kind: 'upload', path: file, mode: 0o600 };
  return {
    name: 'env file',
    kind: 'atomic-upload',
    path: file,
    // Beside the target, so the rename stays on one filesystem; named like a temp file, so a leftover is seen.
    tmp: `${file}.tmp-${p.runToken}`,
    saved: `${p.dir}/${envBefore(p.release)}`,
    dir: p.dir,
    mode: 0o600,
  };
}

/** `print`: the release is printed too, for the records of later steps (rollback point, release log). */
export function recordPreviousStep(dir: string, print: boolean): Step {
  const H = shQuote(dir);
  return {
    name: 'record previous',
    kind: 'exec',
    command: print
      ? `p=; if t=$(readlink ${H}/current); then p=\${t##*/}; printf '%s\\n' "$p"; fi > ${H}/${PREVIOUS}; printf '%s\\n' "$p"`
      : `if t=$(readlink ${H}/current); then printf '%s\\n' "\${t##*/}"; fi > ${H}/${PREVIOUS}`,
    check: ok,
  };
}

const previousOf = (seen: SeenOutput): string | null => (seen.get('record previous') ?? '').trim() || null;

/** rollback-point adds the release record, written last (printf is a builtin: no process), so it means complete. */
function writeReleaseStep(p: DeployPlan): Step {
  const R = `${shQuote(p.dir)}/releases/${shQuote(p.release)}`;
  const marker = JSON.stringify({ id: p.release, run: p.runToken, time: p.now });
  const base = `mkdir -p ${R} && printf '%s\\n' ${shQuote(p.release)} > ${R}/REVISION`;
  return {
    name: 'write release',
    kind: 'exec',
    command: p.properties.includes('rollback-point')
      ? `${base} && printf '%s\\n' ${shQuote(marker)} > ${R}/${RELEASE_MARKER}`
      : base,
    check: ok,
  };
}

/** What a rollback of this release returns to, as homelab-deploy records it before the switch. */
export function rollbackPointRecord(p: DeployPlan, previous: string | null): string {
  return JSON.stringify({ release: p.release, previous, run: p.runToken, time: p.now });
}

/**
 * rollback-point: the record over SFTP under a temp name, renamed in with posix-rename (the product's snapshot
 * phase): no process on the host.
 */
function rollbackPointSteps(p: DeployPlan): Step[] {
  const file = `${p.dir}/${rollbackPointFile(p.release)}`;
  return [
    {
      name: 'rollback point',
      kind: 'write-file',
      path: `${file}.tmp-${p.runToken}`,
      mode: 0o644,
      data: (seen) => `${rollbackPointRecord(p, previousOf(seen))}\n`,
      renameTo: file,
    },
  ];
}

function switchStep(dir: string, release: string): Step {
  const H = shQuote(dir);
  const id = shQuote(release);
  return {
    name: 'switch',
    kind: 'exec',
    command: `ln -sfn releases/${id} ${H}/current.tmp && mv -T ${H}/current.tmp ${H}/current`,
    check: ok,
  };
}

export function releaseLogLine(p: DeployPlan, previous: string | null): string {
  return JSON.stringify({ time: p.now, event: 'deploy', release: p.release, previous, run: p.runToken });
}

/**
 * Prunes releases/ to the newest `keep` (by REVISION's mtime), never the current one nor `protect` (the rollback
 * target), with builtins only: the count is a glob, the oldest is found by `-ot`, and one `rm -rf` takes the
 * pruned releases with their rollback points and kept env files. Nothing to prune, no process. Runs in releases/.
 */
export function pruneScript(current: string, protect: string | null, keep = KEEP_RELEASES): string {
  const spared = [current, protect ?? current].map(shQuote).join('|');
  return [
    'set -- */REVISION',
    `if [ $# -gt ${keep} ]; then`,
    '  n=$#; v=',
    `  while [ $n -gt ${keep} ]; do`,
    '    o=',
    '    for f in */REVISION; do',
    '      r=${f%/REVISION}',
    '      case " $v " in *" $r "*) continue;; esac',
    `      case "$r" in ${spared}) continue;; esac`,
    '      if [ -z "$o" ] || [ "$f" -ot "$o/REVISION" ]; then o=$r; fi',
    '    done',
    '    [ -n "$o" ] || break',
    `    v="$v $o ../rollback-point-$o.json ../${ENV_FILE}.before-$o"; n=$((n - 1))`,
    '  done',
    // Release names are plain words (RELEASE_NAME), so the unquoted list splits into exactly its entries.
    '  [ -z "$v" ] || rm -rf -- $v',
    'fi',
  ].join('\n');
}

/** release-log: after the switch, one line appended and old releases pruned, in one command (as the product). */
function releaseLogStep(p: DeployPlan): Step {
  const H = shQuote(p.dir);
  return {
    name: 'release log',
    kind: 'exec',
    command: (seen) =>
      [
        `printf '%s\\n' ${shQuote(releaseLogLine(p, previousOf(seen)))} >> ${H}/${RELEASE_LOG} && cd ${H}/releases || exit 1`,
        pruneScript(p.release, previousOf(seen)),
      ].join('\n'),
    check: ok,
  };
}

export function healthStep(dir: string, release: string): Step {
  return {
    name: 'health',
    kind: 'exec',
    command: `cat ${shQuote(dir)}/current/REVISION`,
    check: (out) => (out.trim() === release ? undefined : `REVISION is ${JSON.stringify(out.trim())}`),
  };
}

export function auditRecord(p: DeployPlan): string {
  return JSON.stringify({
    time: p.now,
    action: 'lock-released',
    host: p.host,
    release: p.release,
    run: p.runToken,
  });
}

/**
 * The unlock, with audit's line in the same command (printf, a builtin). lock-owner renames the lock aside
 * first, so nobody can take it while its owner is read; a lock that turns out not to be ours goes back.
 */
function unlockStep(p: DeployPlan): Step {
  const H = shQuote(p.dir);
  const audit = p.properties.includes('audit')
    ? ` && printf '%s\\n' ${shQuote(auditRecord(p))} >> ${H}/${AUDIT_LOG}`
    : '';
  if (!p.properties.includes('lock-owner'))
    return { name: 'unlock', kind: 'exec', command: `rmdir ${H}/${LOCK}${audit}`, check: ok };
  const L = `${H}/${LOCK}`;
  const aside = `${H}/${shQuote(releasedLock(p.runToken))}`;
  const mine = shQuote(`"run":"${p.runToken}"`);
  return {
    name: 'unlock',
    kind: 'exec',
    command: [
      `mv -T ${L} ${aside} || exit 1`,
      `o=; { read -r o < ${aside}/${OWNER_FILE}; } 2>/dev/null`,
      `case "$o" in *${mine}*) rm -rf ${aside}${audit} && echo released;;`,
      `*) mv -T ${aside} ${L}; echo "lock not ours: \${o:-(no owner record)}" >&2; exit 1;; esac`,
    ].join('\n'),
    check: (out) => (out.trim() === 'released' ? undefined : `unlock printed ${JSON.stringify(out.trim())}`),
  };
}

/**
 * A rollback as the baseline does it: lock, read the release the last deploy recorded as previous on the host,
 * switch current back to it, check it, unlock. Six exec channels, no upload: the env file of the newer release
 * stays (the product restores the older one; the baseline's job is the switch).
 */
export function rollbackSteps(dir: string): Step[] {
  const H = shQuote(dir);
  const previous = (seen: SeenOutput) => (seen.get('read previous') ?? '').trim();
  return [
    { name: 'lock free', kind: 'exec', command: `test ! -e ${H}/${LOCK}`, check: ok },
    { name: 'lock', kind: 'exec', command: `mkdir ${H}/${LOCK}`, check: ok },
    {
      name: 'read previous',
      kind: 'exec',
      command: `cat ${H}/${PREVIOUS}`,
      check: (out) =>
        RELEASE_NAME.test(out.trim())
          ? undefined
          : `no release to return to (previous: ${JSON.stringify(out)})`,
    },
    {
      name: 'switch back',
      kind: 'exec',
      command: (seen) =>
        `ln -sfn releases/${shQuote(previous(seen))} ${H}/current.tmp && mv -T ${H}/current.tmp ${H}/current`,
      check: ok,
    },
    {
      name: 'health',
      kind: 'exec',
      command: `cat ${H}/current/REVISION`,
      check: (out, seen) =>
        out.trim() === previous(seen) ? undefined : `REVISION is ${JSON.stringify(out.trim())}`,
    },
    { name: 'unlock', kind: 'exec', command: `rmdir ${H}/${LOCK}`, check: ok },
  ];
}
