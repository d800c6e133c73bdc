import { createHash } from 'node:crypto';
import type { HostConfig } from '../config/types';
import { DeployError } from '../errors';
import type { RunContext } from '../run/context';
import { shExports, shQuote } from '../remote/quote';
import { uploadTree, writeFile } from '../remote/sftp';
import { runSteps, type Step, type StepsResult } from '../remote/steps';
import { formatBytes } from '../util/duration';
import { downCommand, releaseEnv, upCommand } from './commands';
import { LAYOUT, RELEASE_ID_RE } from './layout';

/** Scripts that run on a host. Every interpolated value is quoted; data goes over SFTP, never in a command. */

export interface LockOwner {
  token: string;
  runId?: string;
  runUrl?: string;
  actor?: string;
  commit: string;
  release: string;
  phase: string;
  host: string;
  startedAt: string;
  heartbeatAt: string;
}

export interface PreflightState {
  current: string | null;
  releaseComplete: boolean;
  freeBytes: number;
  lock: 'acquired' | 'ours' | 'taken-over';
  result: StepsResult;
}

const cd = (host: HostConfig) => `cd ${shQuote(host.path)} || exit 1`;

function stepsOrThrow(
  r: StepsResult,
  host: string,
  errorClass: 'command-failed' | 'precondition' | 'lock-held' = 'command-failed',
): StepsResult {
  if (r.ok) return r;
  const f = r.failed;
  const tail = (f?.output ?? '').trim().split('\n').slice(-5).join(' | ');
  throw new DeployError(
    errorClass,
    `step "${f?.name}" failed on ${host} (exit ${f?.exitCode ?? 'none'})${tail ? `: ${tail}` : ''}`,
    { host },
  );
}

export function lockOwner(ctx: RunContext, host: string, phase: string): LockOwner {
  const now = new Date().toISOString();
  return {
    token: ctx.runToken,
    runId: ctx.run.id,
    runUrl: ctx.run.url,
    actor: ctx.run.actor,
    commit: ctx.release.commit,
    release: ctx.release.id,
    phase,
    host,
    startedAt: now,
    heartbeatAt: now,
  };
}

/** Checks a host can take a deploy (runtime, disk, lock) and takes the lock last, only if the checks passed. */
export async function preflight(ctx: RunContext, host: HostConfig, phase: string): Promise<PreflightState> {
  const conn = await ctx.pool.get(host.name);
  const owner = JSON.stringify(lockOwner(ctx, host.name, phase));
  const need = host.minFreeDiskBytes;
  const steps: Step[] = [
    { name: 'runtime', script: host.runtimeCheck, display: host.runtimeCheck },
    {
      name: 'disk',
      display: `df ${host.path} >= ${formatBytes(need)}`,
      script: [
        `mkdir -p ${shQuote(host.path)}/${LAYOUT.releases} ${shQuote(host.path)}/${LAYOUT.shared} ${shQuote(host.path)}/${LAYOUT.meta} || exit 1`,
        `free=$(df -Pk ${shQuote(host.path)} | awk 'NR==2 {print $4}')`,
        `echo "free=$((free * 1024))"`,
        `[ "$((free * 1024))" -ge ${need} ] || { printf 'only %s GB free under %s, need %s\\n' "$((free / 1000000))" ${shQuote(host.path)} ${shQuote(formatBytes(need))}; exit 1; }`,
      ].join('\n'),
    },
    {
      name: 'state',
      display: 'readlink current',
      script: [
        cd(host),
        `t=$(readlink ${LAYOUT.current} 2>/dev/null) && echo "current=\${t##*/}" || echo "current="`,
        `[ -f ${LAYOUT.releases}/${ctx.release.id}/${LAYOUT.releaseMarker} ] && echo complete=yes || echo complete=no`,
      ].join('\n'),
    },
    {
      name: 'lock',
      display: `mkdir ${LAYOUT.lock}`,
      script: lockScript(ctx, host, owner),
    },
  ];
  const envFile = ctx.config.secrets?.file;
  if (envFile) {
    // Only once the lock is ours: a temp env file then belongs to a run that was killed mid-upload (it holds
    // secrets and never a live config), not to one still writing it.
    steps.push({
      name: 'sweep',
      display: `remove stale ${envFile}.tmp-*`,
      script: `cd ${shQuote(`${host.path}/${LAYOUT.shared}`)} || exit 1\nfind . -maxdepth 1 -name ${shQuote(`${envFile}.tmp-*`)} -exec rm -f {} + 2>/dev/null; true`,
    });
  }
  const r = await runSteps(conn, steps, { timeoutMs: 60_000, signal: ctx.signal });
  if (!r.ok) {
    const f = r.failed;
    if (f?.name === 'lock') {
      const text = r.outputs.lock ?? '';
      const holder = parseOwner(text.slice(text.indexOf('{')));
      const age = Number(/lock-age=(\d+)/.exec(text)?.[1] ?? NaN);
      const who = holder
        ? `${holder.actor ?? 'unknown actor'} (run ${holder.runUrl ?? holder.runId ?? holder.token}, commit ${holder.commit.slice(0, 12)}, phase ${holder.phase}) since ${holder.startedAt}`
        : 'an unknown owner (no readable owner record)';
      const stale = age >= ctx.config.lock.staleAfterMs / 1000;
      const hint = stale
        ? `; its heartbeat is ${age}s old (stale) but lock.takeover_stale is off: release it with \`homelab-deploy lock release\` after checking that run is gone`
        : Number.isFinite(age)
          ? `; last heartbeat ${age}s ago`
          : '';
      throw new DeployError('lock-held', `${host.name} is locked by ${who}${hint}`, { host: host.name });
    }
    if (f?.name === 'runtime') {
      throw new DeployError(
        'precondition',
        `runtime check "${host.runtimeCheck}" failed on ${host.name} (exit ${f.exitCode}): ${(f.output ?? '').trim().slice(-300)}`,
        {
          host: host.name,
        },
      );
    }
    stepsOrThrow(r, host.name, 'precondition');
  }
  const kv = Object.fromEntries(
    Object.values(r.outputs)
      .join('\n')
      .split('\n')
      .map((l) => l.split('='))
      .filter((p) => p.length >= 2)
      .map(([k, ...v]) => [k.trim(), v.join('=').trim()]),
  );
  return {
    current: kv.current || null,
    releaseComplete: kv.complete === 'yes',
    freeBytes: Number(kv.free ?? 0),
    lock: kv.lock === 'ours' ? 'ours' : kv.lock === 'taken-over' ? 'taken-over' : 'acquired',
    result: r,
  };
}

/**
 * Takes the host's deploy lock with an atomic mkdir. A lock whose owner record has not been refreshed for
 * lock.stale_after is taken over only when the config allows it, under a second mkdir mutex so two runs cannot
 * both take over, and the takeover is audited with the previous owner's record.
 */
function lockScript(ctx: RunContext, host: HostConfig, owner: string): string {
  const L = LAYOUT.lock;
  const staleS = Math.ceil(ctx.config.lock.staleAfterMs / 1000);
  return [
    cd(host),
    `take() { mkdir ${L} 2>/dev/null && printf '%s\\n' ${shQuote(owner)} > ${L}/owner.json.tmp && mv -f ${L}/owner.json.tmp ${LAYOUT.lockOwner}; }`,
    `held() { echo "held by:"; cat ${LAYOUT.lockOwner} 2>/dev/null || echo '(no owner record)'; exit 3; }`,
    `if take; then ${auditLine(ctx, host, 'lock-acquired')}; echo lock=acquired; exit 0; fi`,
    `if grep -q ${shQuote(`"token":"${ctx.runToken}"`)} ${LAYOUT.lockOwner} 2>/dev/null; then echo lock=ours; exit 0; fi`,
    `age=$(( $(date +%s) - $(stat -c %Y ${LAYOUT.lockOwner} 2>/dev/null || stat -c %Y ${L} 2>/dev/null || date +%s) ))`,
    `echo "lock-age=$age"`,
    `[ "$age" -ge ${staleS} ] && [ ${ctx.config.lock.takeoverStale ? 'yes' : 'no'} = yes ] || held`,
    // The takeover mutex is held for milliseconds; one a killed run left behind would block takeovers for ever.
    `find ${LAYOUT.meta} -maxdepth 1 -name takeover -type d -mmin +1 -exec rmdir {} + 2>/dev/null`,
    `mkdir ${LAYOUT.meta}/takeover 2>/dev/null || held`,
    `age=$(( $(date +%s) - $(stat -c %Y ${LAYOUT.lockOwner} 2>/dev/null || stat -c %Y ${L} 2>/dev/null || date +%s) ))`,
    `if [ "$age" -ge ${staleS} ]; then prev=$(cat ${LAYOUT.lockOwner} 2>/dev/null | tr -d '\\n'); rm -rf ${L}; if take; then rmdir ${LAYOUT.meta}/takeover; ${auditLine(ctx, host, 'lock-taken-over', '"previous_owner":')}; echo lock=taken-over; exit 0; fi; fi`,
    `rmdir ${LAYOUT.meta}/takeover; held`,
  ].join('\n');
}

/** A JSON audit line appended on the host; `rawTail` lets a script splice a shell value into the record. */
export function auditLine(
  ctx: RunContext,
  host: HostConfig,
  action: string,
  rawTail?: string,
  extra: Record<string, unknown> = {},
): string {
  const rec = JSON.stringify({
    time: new Date().toISOString(),
    action,
    host: host.name,
    release: ctx.release.id,
    commit: ctx.release.commit,
    actor: ctx.run.actor,
    runId: ctx.run.id,
    runUrl: ctx.run.url,
    token: ctx.runToken,
    ...extra,
  });
  if (rawTail === undefined) return `printf '%s\\n' ${shQuote(rec)} >> ${LAYOUT.auditLog}`;
  // Splice the previous owner's record (read on the host) into the JSON: `{...,"previous_owner":<record>}`.
  return `printf '%s%s%s\\n' ${shQuote(rec.slice(0, -1) + ',' + rawTail)} "\${prev:-null}" '}' >> ${LAYOUT.auditLog}`;
}

export function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text.trim().split('\n')[0]) as LockOwner;
    return typeof o === 'object' && o && typeof o.token === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** Releases the lock only if this run owns it; another run's lock is never touched. */
export async function releaseLock(
  ctx: RunContext,
  host: HostConfig,
  opts: { timeoutMs?: number } = {},
): Promise<boolean> {
  const conn = await ctx.pool.get(host.name);
  const res = await conn.exec(releaseLockScript(ctx, host), { timeoutMs: opts.timeoutMs ?? 30_000 });
  return res.stdout.includes('released');
}

/** While a handed-over rollback runs on the host, it owns the lock: nobody else (a post step) releases it. */
const HANDOVER_PID = `${LAYOUT.lock}/rollback.pid`;

function releaseLockScript(ctx: RunContext, host: HostConfig): string {
  return [
    cd(host),
    `if [ -f ${HANDOVER_PID} ] && kill -0 "$(cat ${HANDOVER_PID})" 2>/dev/null; then echo "busy: a rollback is still running"; exit 0; fi`,
    `if grep -q ${shQuote(`"token":"${ctx.runToken}"`)} ${LAYOUT.lockOwner} 2>/dev/null; then rm -rf ${LAYOUT.lock} && ${auditLine(ctx, host, 'lock-released')} && echo released; else echo not-ours; fi`,
  ].join('\n');
}

export interface RollbackPoint {
  release: string;
  previous: string | null;
  infraSnapshot?: string;
  recordedAt: string;
  runId?: string;
  token?: string;
}

/**
 * Records, on the host, what a rollback of this release returns to; later jobs of the workflow read it back.
 * `previous` undefined means the host already runs this release (a later job, or a re-run after a partial
 * deploy): then the record an earlier run wrote is kept, because the release it names is the one to go back to.
 * Otherwise a fresh deploy starts and any old record of the same release id (from a deploy weeks ago) is replaced.
 */
export async function recordRollbackPoint(
  ctx: RunContext,
  host: HostConfig,
  previous: string | null | undefined,
  infraSnapshot?: string,
): Promise<StepsResult> {
  const conn = await ctx.pool.get(host.name);
  const file = LAYOUT.rollbackPoint(ctx.release.id);
  const script = [cd(host)];
  if (previous === undefined) {
    script.push(`[ -f ${file} ] && { cat ${file}; exit 0; }`, `echo '{}'`);
  } else {
    const point: RollbackPoint = {
      release: ctx.release.id,
      previous,
      infraSnapshot,
      recordedAt: new Date().toISOString(),
      runId: ctx.run.id,
      token: ctx.runToken,
    };
    script.push(
      `printf '%s\\n' ${shQuote(JSON.stringify(point))} > ${file}.tmp && mv -f ${file}.tmp ${file} && cat ${file}`,
      auditLine(ctx, host, 'snapshot', undefined, { kind: 'release', previous, infraSnapshot }),
    );
  }
  const r = await runSteps(
    conn,
    [{ name: 'rollback-point', display: `record ${file}`, script: script.join('\n') }],
    { timeoutMs: 30_000, signal: ctx.signal },
  );
  return stepsOrThrow(r, host.name);
}

export async function readRollbackPoint(
  ctx: RunContext,
  host: HostConfig,
): Promise<RollbackPoint | undefined> {
  const conn = await ctx.pool.get(host.name);
  const res = await conn.exec(
    `${cd(host)}\ncat ${LAYOUT.rollbackPoint(ctx.release.id)} 2>/dev/null || true`,
    { timeoutMs: 30_000, signal: ctx.signal },
  );
  try {
    return JSON.parse(res.stdout.trim()) as RollbackPoint;
  } catch {
    return undefined;
  }
}

export async function readCurrent(
  ctx: RunContext,
  host: HostConfig,
  opts: { timeoutMs?: number } = {},
): Promise<string | null> {
  const conn = await ctx.pool.get(host.name);
  const res = await conn.exec(
    `${cd(host)}\nt=$(readlink ${LAYOUT.current} 2>/dev/null) && echo "\${t##*/}" || true`,
    { timeoutMs: opts.timeoutMs ?? 30_000 },
  );
  return res.stdout.trim() || null;
}

/**
 * A release-log line; `rawTail` splices one shell value (`$dur`) into the record as the last field, for figures
 * only the host can measure.
 */
function logLine(
  ctx: RunContext,
  host: HostConfig,
  entry: Record<string, unknown>,
  rawTail?: string,
): string {
  const line = JSON.stringify({
    time: new Date().toISOString(),
    host: host.name,
    release: ctx.release.id,
    commit: ctx.release.commit,
    actor: ctx.run.actor,
    runId: ctx.run.id,
    runUrl: ctx.run.url,
    token: ctx.runToken,
    ...entry,
  });
  if (rawTail === undefined) return `printf '%s\\n' ${shQuote(line)} >> ${LAYOUT.releaseLog}`;
  return `printf '%s%s}\\n' ${shQuote(line.slice(0, -1) + ',' + rawTail)} "$dur" >> ${LAYOUT.releaseLog}`;
}

export async function appendReleaseLog(
  ctx: RunContext,
  host: HostConfig,
  entry: Record<string, unknown>,
  opts: { timeoutMs?: number } = {},
): Promise<void> {
  const conn = await ctx.pool.get(host.name);
  await conn.exec(`${cd(host)}\n${logLine(ctx, host, entry)}`, { timeoutMs: opts.timeoutMs ?? 30_000 });
}

/**
 * Puts the release on the host and makes it current: upload (unless already complete there), switch the
 * `current` link atomically, run the stack's up command. The release log gets a "started" line before the
 * switch, so a host is never between two releases without a record.
 */
export async function deployRelease(
  ctx: RunContext,
  host: HostConfig,
  stage: string,
  previous: string | null,
  needUpload: boolean,
): Promise<StepsResult> {
  const conn = await ctx.pool.get(host.name);
  const id = ctx.release.id;
  const tmp = `${LAYOUT.releases}/.incoming-${id}-${ctx.runToken}`;
  if (needUpload) {
    const base = `${host.path}/${tmp}`;
    const marker = {
      id,
      commit: ctx.release.commit,
      ref: ctx.release.ref,
      uploadedAt: new Date().toISOString(),
      runId: ctx.run.id,
    };
    await uploadTree(conn, base, ctx.files, { signal: ctx.signal });
    // The marker goes last: a release directory without it is incomplete and is never activated.
    const sftp = await conn.sftp({ signal: ctx.signal });
    await writeFile(
      sftp,
      host.name,
      `${base}/${LAYOUT.releaseMarker}`,
      Buffer.from(JSON.stringify(marker) + '\n'),
      0o644,
      {
        signal: ctx.signal,
      },
    );
  }
  const envFile = ctx.config.secrets?.file;
  const steps: Step[] = [
    {
      name: 'place',
      display: `releases/${id}`,
      script: [
        cd(host),
        `if [ -d ${shQuote(tmp)} ]; then rm -rf ${LAYOUT.releases}/${id} && mv ${shQuote(tmp)} ${LAYOUT.releases}/${id} || exit 1; fi`,
        `[ -f ${LAYOUT.releases}/${id}/${LAYOUT.releaseMarker} ] || { echo "release ${id} is incomplete on this host"; exit 1; }`,
        envFile
          ? `ln -sfn ../../${LAYOUT.shared}/${shQuote(envFile)} ${LAYOUT.releases}/${id}/${shQuote(envFile)}`
          : 'true',
      ].join('\n'),
    },
    {
      name: 'switch',
      display: `current -> releases/${id}`,
      script: [
        cd(host),
        logLine(ctx, host, { event: 'deploy', stage, previous, result: 'started' }),
        auditLine(ctx, host, 'deploy', undefined, { stage, previous }),
        `ln -sfn ${LAYOUT.releases}/${id} .current.tmp && mv -Tf .current.tmp ${LAYOUT.current}`,
      ].join('\n'),
    },
    {
      name: 'up',
      display: upCommand(host.deploy, ctx.config.project),
      script: [
        `cd ${shQuote(host.path)}/${LAYOUT.releases}/${id} || exit 1`,
        shExports(releaseEnv(host, ctx.config.project, ctx.release, stage)),
        upCommand(host.deploy, ctx.config.project),
      ].join('\n'),
    },
  ];
  return runSteps(conn, steps, { timeoutMs: host.deploy.timeoutMs + 60_000, signal: ctx.signal });
}

/**
 * Returns a host to `to` (a release id) or, when this was the first deploy, stops the stack and removes `current`.
 * Restores the env file saved by this run's secrets phase. A host whose `current` already names `to` (the run
 * stopped before switching it) keeps its stack as it runs: nothing of the new release was started there.
 */
export async function rollbackRelease(
  ctx: RunContext,
  host: HostConfig,
  stage: string,
  to: string | null,
  opts: { timeoutMs: number },
): Promise<StepsResult> {
  const conn = await ctx.pool.get(host.name);
  return runSteps(conn, rollbackSteps(ctx, host, stage, to), { timeoutMs: opts.timeoutMs });
}

export interface HandedOverRollback {
  /** The rollback ended within the wait: `ok` is its result. Otherwise it is still running on the host. */
  finished: boolean;
  ok: boolean;
  output: string;
  logFile: string;
}

/**
 * The rollback of a cancelled run: the runner is about to be killed, and killing a stack's `up` half way would
 * leave the host worse off than either release. So the rollback runs detached on the host (its own session,
 * outside our commands' process groups, which the cancellation kills), and it releases the lock itself when it
 * is done; we wait for it only as long as the cancellation budget allows.
 */
export async function handOverRollback(
  ctx: RunContext,
  host: HostConfig,
  stage: string,
  to: string | null,
  waitMs: number,
): Promise<HandedOverRollback> {
  const conn = await ctx.pool.get(host.name);
  const logPath = `${LAYOUT.meta}/rollback-${ctx.runToken}.log`;
  const logFile = shQuote(logPath);
  const rcFile = shQuote(`${LAYOUT.meta}/rollback-${ctx.runToken}.rc`);
  const script = [...rollbackSteps(ctx, host, stage, to).map((st) => `( ${st.script}\n) || exit 1`), ''].join(
    '\n',
  );
  // `( ... & )`: the subshell exits at once, so the detached shell is nobody's child and no kill of ours finds it.
  const detached = [
    `cd ${shQuote(host.path)} && echo $$ > ${HANDOVER_PID}`,
    `sh -c ${shQuote(script)}`,
    `rc=$?; cd ${shQuote(host.path)} && echo "$rc" > ${rcFile}; rm -f ${HANDOVER_PID}`,
    releaseLockScript(ctx, host),
  ].join('\n');
  const waitS = Math.max(0, Math.floor(waitMs / 1000));
  const res = await conn.exec(
    [
      cd(host),
      `rm -f ${rcFile}`,
      `(setsid nohup sh -c ${shQuote(detached)} > ${logFile} 2>&1 < /dev/null &)`,
      `i=0; while [ ! -s ${rcFile} ] && [ $i -lt ${waitS * 5} ]; do sleep 0.2; i=$((i + 1)); done`,
      `if [ -s ${rcFile} ]; then echo "rc=$(cat ${rcFile})"; else echo rc=running; fi`,
      `tail -c 2000 ${logFile} 2>/dev/null`,
    ].join('\n'),
    { timeoutMs: waitMs + 5000 },
  );
  const rc = /^rc=(\S+)/.exec(res.stdout)?.[1];
  return {
    finished: rc !== undefined && rc !== 'running',
    ok: rc === '0',
    output: res.stdout.replace(/^rc=\S+\n?/, ''),
    logFile: `${host.path}/${logPath}`,
  };
}

function rollbackSteps(ctx: RunContext, host: HostConfig, stage: string, to: string | null): Step[] {
  if (to !== null && !RELEASE_ID_RE.test(to))
    throw new DeployError(
      'precondition',
      `rollback target ${JSON.stringify(to)} on ${host.name} is not a release id`,
      {
        host: host.name,
      },
    );
  const envFile = ctx.config.secrets?.file;
  const clock = shQuote(`${LAYOUT.meta}/.rollback-${ctx.runToken}`);
  const switched = shQuote(`${LAYOUT.meta}/.switched-${ctx.runToken}`);
  const steps: Step[] = [
    { name: 'start', display: 'rollback', script: `${cd(host)}\nrm -f ${switched}; date +%s%N > ${clock}` },
  ];
  if (envFile) {
    steps.push({
      name: 'restore-env',
      display: `restore ${envFile}`,
      script: restoreEnvScript(ctx, host, envFile),
    });
  }
  if (to) {
    steps.push(
      {
        name: 'switch',
        display: `current -> releases/${to}`,
        script: [
          cd(host),
          `[ -f ${LAYOUT.releases}/${to}/${LAYOUT.releaseMarker} ] || { echo "rollback target ${to} is missing on this host"; exit 1; }`,
          `[ "$(readlink ${LAYOUT.current} 2>/dev/null)" = ${LAYOUT.releases}/${to} ] && { echo "already on ${to}"; exit 0; }`,
          `ln -sfn ${LAYOUT.releases}/${to} .current.tmp && mv -Tf .current.tmp ${LAYOUT.current} && : > ${switched}`,
        ].join('\n'),
      },
      {
        name: 'up',
        display: upCommand(host.deploy, ctx.config.project),
        script: [
          cd(host),
          `[ -f ${switched} ] || { echo "the stack of ${to} was never replaced; left running"; exit 0; }`,
          `rm -f ${switched}`,
          `cd ${LAYOUT.releases}/${to} || exit 1`,
          shExports(releaseEnv(host, ctx.config.project, { id: to, commit: '' }, stage)),
          upCommand(host.deploy, ctx.config.project),
        ].join('\n'),
      },
    );
  } else {
    const down = downCommand(host.deploy, ctx.config.project);
    steps.push({
      name: 'down',
      display: down ?? 'remove current',
      script: [
        cd(host),
        down
          ? `if [ -d ${LAYOUT.current}/ ]; then (cd ${LAYOUT.current}/ && ${shExports(releaseEnv(host, ctx.config.project, ctx.release, stage))}\n${down}) || exit 1; fi`
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
      `t0=$(cat ${clock} 2>/dev/null); rm -f ${clock}`,
      `dur=$(( ( $(date +%s%N) - \${t0:-0} ) / 1000000 )); [ -n "$t0" ] || dur=null`,
      logLine(ctx, host, { event: 'rollback', stage, to, result: 'rolled_back' }, '"durationMs":'),
      auditLine(ctx, host, 'rollback', undefined, { stage, to }),
    ].join('\n'),
  });
  return steps;
}

/** Puts back the env file this run's secrets phase saved, if it saved one; atomic like the write itself. */
function restoreEnvScript(ctx: RunContext, host: HostConfig, envFile: string): string {
  const file = `${LAYOUT.shared}/${envFile}`;
  const saved = `${file}.before-${ctx.release.id}`;
  return [
    cd(host),
    `if [ -f ${shQuote(saved)} ]; then cp -p ${shQuote(saved)} ${shQuote(`${file}.restore`)} && mv -f ${shQuote(`${file}.restore`)} ${shQuote(file)} && ${auditLine(ctx, host, 'env-restored', undefined, { file: envFile })}; fi`,
  ].join('\n');
}

/**
 * Restores the env file on a host this run wrote it on but that does not end on the new release (it was never
 * deployed, or the run aborted), so the release it runs and its env file on disk stay a pair.
 */
export async function restoreEnvFile(
  ctx: RunContext,
  host: HostConfig,
  opts: { timeoutMs?: number } = {},
): Promise<StepsResult | undefined> {
  const envFile = ctx.config.secrets?.file;
  if (!envFile) return undefined;
  const conn = await ctx.pool.get(host.name);
  return runSteps(
    conn,
    [{ name: 'restore-env', display: `restore ${envFile}`, script: restoreEnvScript(ctx, host, envFile) }],
    {
      timeoutMs: opts.timeoutMs ?? 30_000,
    },
  );
}

/** Keeps the newest `keep` releases; never removes the current release or the one a rollback would need. */
export async function pruneReleases(ctx: RunContext, host: HostConfig, keep: string[]): Promise<void> {
  const conn = await ctx.pool.get(host.name);
  const protect = keep
    .filter(Boolean)
    .map((k) => `-e ${shQuote(`^${k}$`)}`)
    .join(' ');
  // A pruned release takes its bookkeeping with it: its rollback point and the env file kept for its rollback
  // (which holds secrets nobody will need again).
  const envFile = ctx.config.secrets?.file;
  const forget = [
    `rm -rf -- "$r"`,
    `rm -f -- ../${LAYOUT.rollbackPoint('"$r"')}`,
    envFile ? `rm -f -- ../${LAYOUT.shared}/${shQuote(`${envFile}.before-`)}"$r"` : '',
  ]
    .filter(Boolean)
    .join('; ');
  await conn.exec(
    [
      cd(host),
      `cd ${LAYOUT.releases} || exit 0`,
      // Oldest first by marker mtime; the newest keep_releases survive.
      `ls -1tr */${LAYOUT.releaseMarker} 2>/dev/null | sed 's#/.*##' | head -n -${host.keepReleases} | { ${protect ? `grep -v ${protect}` : 'cat'} || true; } | while read -r r; do ${forget}; done`,
      `find . -maxdepth 1 -name '.incoming-*' -mmin +60 -exec rm -rf {} + 2>/dev/null; true`,
    ].join('\n'),
    { timeoutMs: 120_000 },
  );
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Refreshes the lock's heartbeat (the owner record's heartbeatAt and its mtime, which other runs read to tell a
 * live lock from a stale one). Returns false when the lock is no longer ours: someone released or took it over.
 */
export async function heartbeat(ctx: RunContext, host: HostConfig): Promise<boolean> {
  const conn = await ctx.pool.get(host.name);
  const now = new Date().toISOString();
  const res = await conn.exec(
    [
      cd(host),
      `grep -q ${shQuote(`"token":"${ctx.runToken}"`)} ${LAYOUT.lockOwner} 2>/dev/null || { echo lost; exit 0; }`,
      `sed -E ${shQuote(`s/"heartbeatAt":"[^"]*"/"heartbeatAt":"${now}"/`)} ${LAYOUT.lockOwner} > ${LAYOUT.lockOwner}.hb && mv -f ${LAYOUT.lockOwner}.hb ${LAYOUT.lockOwner}`,
      'echo ours',
    ].join('\n'),
    { timeoutMs: 15_000 },
  );
  return !res.stdout.includes('lost');
}
