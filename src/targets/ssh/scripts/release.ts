import type { HostConfig } from '../../../config/types';
import { DeployError } from '../../../errors';
import { shExports, shQuote } from '../../../remote/quote';
import type { Step } from '../../../remote/steps';
import { RELEASE_ID_RE } from '../../../run/release';
import type { RollbackPoint } from '../../target';
import { downCommand, releaseEnv, upCommand } from '../commands';
import { LAYOUT } from '../layout';
import { auditLine, cd, currentName, logLine, type ScriptRun } from './common';
import { envUndoNames } from './env';
import { HANDOVER_PID, releaseLockScript } from './lock';

/** Where a release is uploaded before it is placed; per run, so two runs never write into each other's upload. */
export const incomingDir = (run: ScriptRun): string =>
  `${LAYOUT.releases}/.incoming-${run.release.id}-${run.runToken}`;

/**
 * The next `current`, made with the upload (a symlink to the release, relative to the deploy path) and renamed
 * onto `current` by the switch. Named like an upload, so what removes a dead run's uploads removes it too.
 */
export const incomingCurrent = (run: ScriptRun): string =>
  `${LAYOUT.releases}/.incoming-current-${run.release.id}-${run.runToken}`;

/** What the upload already holds, made over SFTP (which costs the host no process); the rest is made on the host. */
export interface Prepared {
  /** The release's link to the env file. */
  envLinked?: boolean;
  /** The link at incomingCurrent. */
  currentLinked?: boolean;
}

/** What a release's link to the env file points at, relative to the release directory. */
export const envLink = (envFile: string): string => `../../${LAYOUT.shared}/${shQuote(envFile)}`;

/**
 * Makes the uploaded release current: place it (a complete release has its marker), link the env file into it,
 * write a "started" line to the release log before `current` moves (so a host is never between two releases
 * without a record), switch `current` atomically, then run the stack's up command in the release directory.
 */
export function deploySteps(
  run: ScriptRun,
  host: HostConfig,
  stage: string,
  previous: string | null,
  made: Prepared = {},
): Step[] {
  const id = run.release.id;
  const tmp = incomingDir(run);
  const envFile = run.config.secrets?.file;
  return [
    {
      name: 'place',
      display: `releases/${id}`,
      script: [
        cd(host),
        // An earlier, incomplete copy of the release is only removed where there is one.
        `if [ -d ${shQuote(tmp)} ]; then { [ ! -e ${LAYOUT.releases}/${id} ] && [ ! -L ${LAYOUT.releases}/${id} ]; } || rm -rf ${LAYOUT.releases}/${id} || exit 1; mv ${shQuote(tmp)} ${LAYOUT.releases}/${id} || exit 1; fi`,
        `[ -f ${LAYOUT.releases}/${id}/${LAYOUT.releaseMarker} ] || { echo "release ${id} is incomplete on this host"; exit 1; }`,
        envFile && !made.envLinked
          ? `ln -sfn ${envLink(envFile)} ${LAYOUT.releases}/${id}/${shQuote(envFile)}`
          : 'true',
      ].join('\n'),
    },
    {
      name: 'switch',
      display: `current -> releases/${id}`,
      script: [
        cd(host),
        logLine(run, host, { event: 'deploy', stage, previous, result: 'started' }),
        auditLine(run, host, 'deploy', undefined, { stage, previous }),
        // A deploy or rollback that reaches the switch supersedes an earlier failed rollback's warning.
        `[ ! -e ${LAYOUT.needsAttention} ] || rm -f ${LAYOUT.needsAttention}`,
        made.currentLinked
          ? `if [ -L ${incomingCurrent(run)} ]; then mv -Tf ${incomingCurrent(run)} ${LAYOUT.current}; else ln -sfn ${LAYOUT.releases}/${id} .current.tmp && mv -Tf .current.tmp ${LAYOUT.current}; fi`
          : `ln -sfn ${LAYOUT.releases}/${id} .current.tmp && mv -Tf .current.tmp ${LAYOUT.current}`,
      ].join('\n'),
    },
    {
      name: 'up',
      display: upCommand(host.deploy, run.config.project),
      script: [
        `cd ${shQuote(host.path)}/${LAYOUT.releases}/${id} || exit 1`,
        shExports(releaseEnv(host, run.config.project, run.release, stage)),
        upCommand(host.deploy, run.config.project),
      ].join('\n'),
    },
  ];
}

/**
 * Returns a host to `to` (a release id) or, when this was the first deploy, stops the stack and removes `current`.
 * Restores the env file saved by this run's secrets phase. A host whose `current` already names `to` (the run
 * stopped before switching it) keeps its stack as it runs: nothing of the new release was started there.
 */
export function rollbackSteps(run: ScriptRun, host: HostConfig, stage: string, to: string | null): Step[] {
  if (to !== null && !RELEASE_ID_RE.test(to))
    throw new DeployError(
      'precondition',
      `rollback target ${JSON.stringify(to)} on ${host.name} is not a release id`,
      { host: host.name },
    );
  const envFile = run.config.secrets?.file;
  const clock = shQuote(`${LAYOUT.meta}/.rollback-${run.runToken}`);
  const switched = shQuote(`${LAYOUT.meta}/.switched-${run.runToken}`);
  const steps: Step[] = [
    // The switch marker outlives a failed attempt (a lost session, say): a second attempt then still runs `up`.
    { name: 'start', display: 'rollback', script: `${cd(host)}\ndate +%s%N > ${clock}` },
  ];
  if (envFile)
    steps.push({
      name: 'restore-env',
      display: `restore ${envFile}`,
      script: restoreEnvScript(run, host, envFile),
    });
  if (to) {
    steps.push(
      {
        name: 'switch',
        display: `current -> releases/${to}`,
        script: [
          cd(host),
          `[ -f ${LAYOUT.releases}/${to}/${LAYOUT.releaseMarker} ] || { echo "rollback target ${to} is missing on this host (releases/${to} has no ${LAYOUT.releaseMarker})"; exit 1; }`,
          // Whether `current` already leads to `to`, by the folders both resolve to (`cd -P`: no process).
          `a=; b=; if cd -P ${LAYOUT.current} 2>/dev/null; then a=$PWD; ${cd(host)}; fi; if cd -P ${LAYOUT.releases}/${to}; then b=$PWD; ${cd(host)}; fi`,
          `if [ -n "$a" ] && [ "$a" = "$b" ]; then echo "already on ${to}"`,
          `else ln -sfn ${LAYOUT.releases}/${to} .current.tmp && mv -Tf .current.tmp ${LAYOUT.current} && : > ${switched}; fi`,
        ].join('\n'),
      },
      {
        name: 'up',
        display: upCommand(host.deploy, run.config.project),
        script: [
          cd(host),
          `[ -f ${switched} ] || { echo "the stack of ${to} was never replaced; left running"; exit 0; }`,
          `cd ${LAYOUT.releases}/${to} || exit 1`,
          shExports(releaseEnv(host, run.config.project, { id: to, commit: '' }, stage)),
          upCommand(host.deploy, run.config.project),
        ].join('\n'),
      },
    );
  } else {
    const down = downCommand(host.deploy, run.config.project);
    steps.push({
      name: 'down',
      display: down ?? 'remove current',
      script: [
        cd(host),
        down
          ? `if [ -d ${LAYOUT.current}/ ]; then (cd ${LAYOUT.current}/ && ${shExports(releaseEnv(host, run.config.project, run.release, stage))}\n${down}) || exit 1; fi`
          : 'true',
        `rm -f ${LAYOUT.current}`,
      ].join('\n'),
    });
  }
  steps.push({
    name: 'log',
    display: 'release log',
    script: [
      cd(host),
      `t0=; { read -r t0 < ${clock}; } 2>/dev/null`,
      `dur=$(( ( $(date +%s%N) - \${t0:-0} ) / 1000000 )); [ -n "$t0" ] || dur=null`,
      // One rm for the clock, the markers and this run's undo files of the env file.
      `rm -f ${clock} ${LAYOUT.needsAttention} ${switched}${envFile ? ` ${undoFiles(run, envFile)}` : ''}`,
      logLine(run, host, { event: 'rollback', stage, to, result: 'rolled_back' }, '"durationMs":'),
      auditLine(run, host, 'rollback', undefined, { stage, to }),
    ].join('\n'),
  });
  return steps;
}

/**
 * The rollback of a cancelled run, detached on the host: the runner is about to be killed, and killing a stack's
 * `up` half way would leave the host worse off than either release. It runs in its own session, outside our
 * commands' process groups (which the cancellation kills), releases the lock itself when done, and the caller
 * waits only `waitS` seconds for its result.
 */
export function handOverScript(
  run: ScriptRun,
  host: HostConfig,
  stage: string,
  to: string | null,
  waitS: number,
): { script: string; logPath: string } {
  const logPath = `${LAYOUT.meta}/rollback-${run.runToken}.log`;
  const logFile = shQuote(logPath);
  const rcFile = shQuote(`${LAYOUT.meta}/rollback-${run.runToken}.rc`);
  const body = [...rollbackSteps(run, host, stage, to).map((st) => `( ${st.script}\n) || exit 1`), ''].join(
    '\n',
  );
  // `( ... & )`: the subshell exits at once, so the detached shell is nobody's child and no kill of ours finds it.
  const detached = [
    `cd ${shQuote(host.path)} && echo $$ > ${HANDOVER_PID}`,
    `sh -c ${shQuote(body)}`,
    `rc=$?; cd ${shQuote(host.path)} && echo "$rc" > ${rcFile}; rm -f ${HANDOVER_PID}`,
    // Nobody may be waiting any more when it fails: the host says so itself, until a deploy or rollback.
    'if [ "$rc" != 0 ]; then',
    needsAttentionScript(run, host, {
      time: new Date().toISOString(),
      reason: 'rollback-failed',
      release: run.release.id,
      rollbackTo: to,
      error: `the rollback handed over to the host when the run was cancelled failed; its log is ${host.path}/${logPath}`,
      runId: run.run.id,
      runUrl: run.run.url,
    }),
    'fi',
    releaseLockScript(run, host),
  ].join('\n');
  const script = [
    cd(host),
    `rm -f ${rcFile}`,
    `(setsid nohup sh -c ${shQuote(detached)} > ${logFile} 2>&1 < /dev/null &)`,
    `i=0; while [ ! -s ${rcFile} ] && [ $i -lt ${waitS * 5} ]; do sleep 0.2; i=$((i + 1)); done`,
    `if [ -s ${rcFile} ]; then echo "rc=$(cat ${rcFile})"; else echo rc=running; fi`,
    `tail -c 2000 ${logFile} 2>/dev/null`,
  ].join('\n');
  return { script, logPath };
}

/**
 * A rollback's env file: the one kept from before this release first came to the host (by whichever job wrote
 * it), put back atomically. On a full disk the copy is a hard link, which needs no space.
 */
export function restoreEnvScript(run: ScriptRun, host: HostConfig, envFile: string): string {
  const file = `${LAYOUT.shared}/${envFile}`;
  const saved = shQuote(`${file}.before-${run.release.id}`);
  const restore = shQuote(`${file}.restore`);
  return [
    cd(host),
    `if [ -f ${saved} ]; then { cp -p ${saved} ${restore} 2>/dev/null || { rm -f ${restore}; ln -f ${saved} ${restore}; }; } && mv -f ${restore} ${shQuote(file)} && ${auditLine(run, host, 'env-restored', undefined, { file: envFile })}; fi`,
  ].join('\n');
}

/** This run's undo files of the env file (see envSwapStep), as shell words relative to the deploy path. */
const undoFiles = (run: ScriptRun, envFile: string): string =>
  Object.values(envUndoNames(envFile, run.runToken))
    .map((f) => `${LAYOUT.shared}/${shQuote(f)}`)
    .join(' ');

/**
 * Undoes exactly this run's change of the env file, for a run that ends without keeping it (aborted, or the host
 * not on the new release): the file it replaced comes back by a rename (no space needed), or the file goes if
 * there was none; a temp file of this run is removed too. Nothing happens where this run changed nothing.
 */
export function undoEnvScript(run: ScriptRun, host: HostConfig, envFile: string): string {
  const file = shQuote(`${LAYOUT.shared}/${envFile}`);
  const { undo, absent, fromSaved } = envUndoNames(envFile, run.runToken);
  const u = shQuote(`${LAYOUT.shared}/${undo}`);
  const a = shQuote(`${LAYOUT.shared}/${absent}`);
  const fs = shQuote(`${LAYOUT.shared}/${fromSaved}`);
  const saved = shQuote(`${LAYOUT.shared}/${envFile}.before-${run.release.id}`);
  const back = shQuote(`${LAYOUT.shared}/${envFile}.restore-${run.runToken}`);
  const tmp = shQuote(`${LAYOUT.shared}/${envFile}.tmp-${run.runToken}`);
  const audit = (how: string) => auditLine(run, host, 'env-restored', undefined, { file: envFile, how });
  return [
    cd(host),
    `[ ! -e ${tmp} ] || rm -f ${tmp}`,
    `if [ -e ${a} ]; then rm -f ${file} && rm -f ${a} && ${audit('removed: there was none before this run')} && echo restored; fi`,
    // A rename onto a hard link of the same file does nothing: the undo then only goes.
    `if [ -f ${u} ]; then mv -f ${u} ${file} && rm -f ${u} && ${audit('put back the file this run replaced')} && echo restored; fi`,
    // The release's copy stays (a later rollback of the release needs it): a second link to it is renamed over.
    `if [ -e ${fs} ]; then ln -f ${saved} ${back} && mv -f ${back} ${file} && rm -f ${fs} && ${audit('put back the file this run replaced')} && echo restored; fi`,
    'true',
  ].join('\n');
}

/**
 * Keeps the newest `keep_releases` releases; never removes the current release or one in `protect` (the rollback
 * target). A pruned release takes its bookkeeping with it: its rollback point and the env file kept for its
 * rollback (which holds secrets nobody will need again).
 */
export function pruneScript(run: ScriptRun, host: HostConfig, protect: string[]): string {
  const keep = protect
    .filter(Boolean)
    .map((k) => `-e ${shQuote(`^${k}$`)}`)
    .join(' ');
  const envFile = run.config.secrets?.file;
  const forget = [
    `rm -rf -- "$r"`,
    `rm -f -- ../${LAYOUT.rollbackPoint('"$r"')}`,
    envFile ? `rm -f -- ../${LAYOUT.shared}/${shQuote(`${envFile}.before-`)}"$r"` : '',
  ]
    .filter(Boolean)
    .join('; ');
  return [
    cd(host),
    `cd ${LAYOUT.releases} || exit 0`,
    // Counted by a glob first: only a host with more than keep_releases releases pays for the pipeline.
    `set -- */${LAYOUT.releaseMarker}; [ -e "$1" ] || set --`,
    // Oldest first by marker mtime; the newest keep_releases survive.
    `[ $# -le ${host.keepReleases} ] || ls -1tr */${LAYOUT.releaseMarker} 2>/dev/null | sed 's#/.*##' | head -n -${host.keepReleases} | { ${keep ? `grep -v ${keep}` : 'cat'} || true; } | while read -r r; do ${forget}; done`,
    // Uploads of runs that died an hour ago or more; a glob says first whether there is any upload at all.
    `for d in .incoming-*; do [ -e "$d" ] || [ -L "$d" ] || continue; find . -maxdepth 1 -name '.incoming-*' -mmin +60 -exec rm -rf {} + 2>/dev/null; break; done`,
    'true',
  ].join('\n');
}

/**
 * Records what a rollback of this release returns to; later jobs of the workflow read it back. `point` undefined
 * means the host already runs this release (a later job, or a re-run after a partial deploy): then the record an
 * earlier run wrote is kept, because the release it names is the one to go back to. Otherwise a fresh deploy
 * starts and any old record of the same release id (from a deploy weeks ago) is replaced. Prints the record.
 */
export function rollbackPointScript(
  run: ScriptRun,
  host: HostConfig,
  point: RollbackPoint | undefined,
): string {
  const file = LAYOUT.rollbackPoint(run.release.id);
  // The record is printed by the shell (`read`, printf), not by cat: one process fewer.
  if (point === undefined)
    return [
      cd(host),
      `if [ -f ${file} ]; then while read -r l || [ -n "$l" ]; do printf '%s\\n' "$l"; done < ${file}; else echo '{}'; fi`,
    ].join('\n');
  const rec = shQuote(JSON.stringify(point));
  return [
    cd(host),
    `printf '%s\\n' ${rec} > ${file}.tmp && mv -f ${file}.tmp ${file} && printf '%s\\n' ${rec}`,
    auditLine(run, host, 'snapshot', undefined, {
      kind: 'release',
      previous: point.previous,
      infraSnapshot: point.infraSnapshot,
    }),
  ].join('\n');
}

export const readCurrentScript = (host: HostConfig): string =>
  `${cd(host)}\n${currentName(host)}\n[ -z "$cur" ] || echo "$cur"`;

/** A host whose rollback failed is marked for a human; `status` shows the record until a deploy or rollback. */
export function needsAttentionScript(
  run: ScriptRun,
  host: HostConfig,
  record: Record<string, unknown>,
): string {
  return [
    cd(host),
    `printf '%s\\n' ${shQuote(JSON.stringify(record))} > ${LAYOUT.needsAttention}.tmp && mv -f ${LAYOUT.needsAttention}.tmp ${LAYOUT.needsAttention}`,
    auditLine(run, host, 'needs-attention', undefined, record),
  ].join('\n');
}
