import { createHash, randomBytes } from 'node:crypto';
import type { SFTPWrapper } from 'ssh2';
import type { HostConfig } from '../../config/types';
import { DeployError, toDeployError, type ErrorClass } from '../../errors';
import type { HealthSubject } from '../../health/subject';
import { probeCompose } from '../../health/compose';
import { trackSftpRequest, type SshConnection } from '../../remote/connection';
import type { ConnectionPool } from '../../remote/pool';
import { shQuote } from '../../remote/quote';
import { readFileIfExists, SFTP_REQUEST_TIMEOUT_MS, uploadTree, writeFile } from '../../remote/sftp';
import { runSteps, type Step, type StepsResult } from '../../remote/steps';
import type { RunContext } from '../../run/context';
import type { StepReport } from '../../report/types';
import { changedKeys, parseEnvFile } from '../../secrets/env-file';
import {
  SnapshotActionError,
  snapshotName,
  snapshotProvider,
  type SnapshotAction,
} from '../../snapshot/provider';
import { formatBytes, sleep } from '../../util/duration';
import type { ExecOptions, ExecResult, Shell } from '../../util/shell';
import type {
  DeployOptions,
  DeployOutcome,
  OperatorLockRelease,
  PreflightOutcome,
  RollbackOptions,
  RollbackFacts,
  RollbackOutcome,
  RollbackPoint,
  SecretsOutcome,
  SnapshotOutcome,
  StepsOutcome,
  Target,
  TargetStatus,
} from '../target';
import { releaseEnv } from './commands';
import { LAYOUT } from './layout';
import { parseOwner } from './owner';
import { auditLine, lockOwner, logLine, type ScriptRun } from './scripts/common';
import { swapEnvOverSftp } from './env-swap';
import { readPointOverSftp, recordPointOverSftp } from './rollback-point';
import { envSwapStep, envUndoNames } from './scripts/env';
import { heartbeatScript, releaseLockScript } from './scripts/lock';
import { preflightSteps, preflightValues } from './scripts/preflight';
import {
  deploySteps,
  handOverScript,
  incomingCurrent,
  incomingDir,
  needsAttentionScript,
  pruneScript,
  readCurrentScript,
  rollbackPointScript,
  rollbackSteps,
  undoEnvScript,
  type Prepared,
} from './scripts/release';
import { freeSpaceScript, waitGoneScript } from './scripts/repair';
import { parseTestsOutput, testsScript, TESTS_KILL_AFTER_S } from './scripts/tests';
import { auditSnapshotActions } from './snapshot-audit';
import { operatorReleaseLock, readRollbackFacts, readStatus } from './status';
import { sshTemplateVars } from './vars';

/** How long a host may take to answer SSH again after its VM was rolled back (and booted). */
const VM_BACK_TIMEOUT_MS = 180_000;
/** The SSH command around the tests gets this much on top of their own limit. */
const TESTS_OUTER_GRACE_MS = (TESTS_KILL_AFTER_S + 25) * 1000;
/** How long a rollback waits for this run's abandoned commands on the host to be gone. */
const ORPHAN_WAIT_S = 10;
/**
 * How long, from the first need, a run keeps trying to reach a host again to stop what a lost channel left running
 * there; every later attempt on the same host shares the window, so a host that is gone for good costs it once.
 */
const ORPHAN_RECONNECT_MS = 15_000;
/** A rollback whose session dies is tried again (after killing what it left) this many times in all. */
const ROLLBACK_ATTEMPTS = 3;
/**
 * When a cancel lands while a rollback runs, the rest is handed over to the host and waited for this long at most:
 * the cancellation budget (about 6 s) also has to kill what runs and release the locks.
 */
const CANCELLED_ROLLBACK_WAIT_MS = 3000;
/** Room a write needs beyond its bytes (metadata, a file system's reserve) before "no space" is not the reason. */
const SPACE_SLACK_BYTES = 64 * 1024;

/** Errors that mean a command's channel was lost: the command may still run on the host. */
const LOST = ['unreachable', 'timeout', 'cancelled'];
const lostChannel = (err: unknown): boolean => err instanceof DeployError && LOST.includes(err.errorClass);

export interface SshShared {
  pool: ConnectionPool;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** The env file's link target as SFTP takes it (a plain path, not a shell word). */
const envLinkTarget = (envFile: string): string => `../../${LAYOUT.shared}/${envFile}`;

/**
 * Makes a symlink over SFTP, which costs the host no process; false when it was not made (the name exists, the
 * server refused, or no answer came in time), and the caller then makes it on the host.
 */
function sftpSymlink(sftp: SFTPWrapper, target: string, link: string): Promise<boolean> {
  return new Promise((resolve) => {
    const done = trackSftpRequest(sftp);
    const timer = setTimeout(() => finish(false), SFTP_REQUEST_TIMEOUT_MS);
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      done();
      resolve(ok);
    };
    try {
      sftp.symlink(target, link, (err) => finish(!err));
    } catch {
      finish(false); // the session closed meanwhile
    }
  });
}

/** A step failure as a DeployError of `errorClass`, quoting the step's exit code and last output lines. */
/** The report's step for work done with SFTP requests alone: no exit code of its own, nothing printed. */
function sftpDone(name: string, command: string, startedAt: number): StepsOutcome {
  const step: StepReport = { name, command, exitCode: 0, durationMs: Date.now() - startedAt, ok: true };
  return { ok: true, steps: [step] };
}

function stepError(
  r: StepsOutcome,
  host: string,
  errorClass: 'command-failed' | 'precondition' = 'command-failed',
): DeployError {
  const f = r.failed;
  const tail = (f?.output ?? '').trim().split('\n').slice(-5).join(' | ');
  return new DeployError(
    errorClass,
    `step "${f?.name}" failed on ${host} (exit ${f?.exitCode ?? 'none'})${tail ? `: ${tail}` : ''}`,
    { host },
  );
}

/**
 * An SSH host as a target: releases in `<path>/releases/<id>`, an atomic `current` link, compose or up/down
 * commands, and the lock, release log, audit log and rollback points in `<path>/.homelab-deploy/`. Scripts are
 * built by the pure functions in ./scripts; this class only runs them over the host's connection and reads
 * their results.
 */
export class SshTarget implements Target {
  readonly kind = 'ssh' as const;
  /**
   * A command of this run lost its channel (no exit status, a timeout, a cancel): it may still run on the host,
   * and nothing may be rolled back or released there before it is gone.
   */
  private abandoned = false;
  /** Until when ensureNothingRunning keeps trying to reach the host again (see ORPHAN_RECONNECT_MS). */
  private reconnectUntil?: number;
  /**
   * What `current` named when this run released its lock (the release reads it while the lock is still its own),
   * until this run sends the host anything else: what readCurrent would read then, without another command.
   */
  private currentAtRelease?: string | null;

  constructor(
    private readonly ctx: RunContext,
    readonly config: HostConfig,
    private readonly shared: SshShared,
  ) {}

  get name(): string {
    return this.config.name;
  }

  private conn(): Promise<SshConnection> {
    return this.shared.pool.get(this.name);
  }

  /** Runs a script on the host, remembering when a command may outlive its channel. */
  private async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.currentAtRelease = undefined;
    const conn = await this.conn();
    try {
      const res = await conn.exec(script, opts);
      if (res.code === null && !res.signal) this.abandoned = true;
      return res;
    } catch (err) {
      if (lostChannel(err)) this.abandoned = true;
      throw err;
    }
  }

  private async steps(
    steps: Step[],
    opts: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<StepsResult> {
    this.currentAtRelease = undefined;
    const conn = await this.conn();
    try {
      const r = await runSteps(conn, steps, opts);
      if (r.steps.some((s) => s.exitCode === null)) this.abandoned = true;
      return r;
    } catch (err) {
      if (lostChannel(err)) this.abandoned = true;
      throw err;
    }
  }

  /** The host as a Shell, for snapshot providers and checks that only need to run a command there. */
  private get shell(): Shell {
    return { exec: (script, opts) => this.exec(script, opts) };
  }

  async preflight(phase: string): Promise<PreflightOutcome> {
    const { ctx, config: host } = this;
    // A lock command of an earlier try that lost its channel could still take the lock behind this one.
    await this.nothingLeft();
    const owner = JSON.stringify(lockOwner(ctx, host.name, phase));
    const r = await this.steps(preflightSteps(ctx, host, owner), { timeoutMs: 60_000, signal: ctx.signal });
    const kv = preflightValues(r.outputs);
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
        const hint = text.includes('a rollback handed over to the host is still running')
          ? `; a rollback that run handed over to the host is still running there (it releases the lock when it ends)`
          : stale
            ? `; its heartbeat is ${age}s old (stale) but lock.takeover_stale is off: release it with \`homelab-deploy lock release\` after checking that run is gone`
            : Number.isFinite(age)
              ? `; last heartbeat ${age}s ago`
              : '';
        throw new DeployError('lock-held', `${host.name} is locked by ${who}${hint}`, { host: host.name });
      }
      if (f?.name === 'runtime')
        throw new DeployError(
          'precondition',
          `runtime check "${host.runtimeCheck}" failed on ${host.name} (exit ${f.exitCode}): ${(f.output ?? '').trim().slice(-300)}`,
          { host: host.name },
        );
      if (f?.name === 'disk' && kv.free !== undefined && f.exitCode === 1)
        throw new DeployError(
          'precondition',
          `only ${formatBytes(Number(kv.free))} free under ${host.path} on ${host.name}, need ${formatBytes(host.minFreeDiskBytes)} (min_free_disk)`,
          { host: host.name },
        );
      throw stepError(r, host.name, 'precondition');
    }
    const current = kv.current || null;
    const repaired = (r.outputs.sweep ?? '')
      .split('\n')
      .filter((l) => l.startsWith('repaired='))
      .map((l) => l.slice('repaired='.length).trim());
    if (repaired.length)
      ctx.emit({
        type: 'log',
        level: 'warn',
        message: `${host.name}: repaired what an earlier run left: ${repaired.join('; ')}`,
      });
    return {
      current,
      onNew: current === ctx.release.id,
      prepared: kv.complete === 'yes',
      lock: kv.lock === 'ours' ? 'ours' : kv.lock === 'taken-over' ? 'taken-over' : 'acquired',
      steps: r,
      detail: {
        freeBytes: Number(kv.free ?? 0),
        ...(repaired.length ? { repaired: repaired.join('; ') } : {}),
      },
    };
  }

  async heartbeat(): Promise<boolean> {
    const res = await this.exec(heartbeatScript(this.ctx, this.config, new Date().toISOString()), {
      timeoutMs: 15_000,
    });
    return !res.stdout.includes('lost');
  }

  /**
   * Releases the lock once nothing of this run runs on the host any more; false when it was not released (not
   * ours, or the host did not answer). Rejects only when that cannot be made sure (the host cannot be reached to
   * stop a command that lost its channel, or the command outlived its kill): the host then keeps its lock, and its
   * state is unknown.
   */
  async releaseLock(opts: { timeoutMs?: number } = {}): Promise<boolean> {
    await this.nothingLeft(opts.timeoutMs);
    // A host that cannot be reached now keeps its lock (stale later), and nothing of this run runs there.
    const res = await this.exec(releaseLockScript(this.ctx, this.config), {
      timeoutMs: opts.timeoutMs ?? 30_000,
    }).catch(() => undefined);
    const released = res?.stdout.includes('released') ?? false;
    const current = /^current=(.*)$/m.exec(res?.stdout ?? '');
    if (released && current) this.currentAtRelease = current[1].trim() || null;
    return released;
  }

  /**
   * Replaces the host's env file atomically: 0600 temp file in the same folder, fsync, size+sha256 check on the
   * host, keep the old file for rollback, rename over. An interrupted run leaves only a temp file the next run's
   * pre-flight sweeps.
   */
  async writeSecrets(file: string, content: string): Promise<SecretsOutcome> {
    const { ctx, config: host } = this;
    await this.nothingLeft();
    const conn = await this.conn();
    const sftp = await conn.sftp({ signal: ctx.signal });
    const dir = `${host.path}/${LAYOUT.shared}`;
    const tmp = `${file}.tmp-${ctx.runToken}`;
    const old = (await readFileIfExists(sftp, host.name, `${dir}/${file}`, { signal: ctx.signal }))?.toString(
      'utf8',
    );
    if (old !== undefined && sha256(old) === sha256(content)) return { state: 'unchanged', changed: [] };
    const data = Buffer.from(content, 'utf8');
    const what = `writing ${LAYOUT.shared}/${file}`;
    const names = {
      dir,
      file,
      tmp,
      saved: `${file}.before-${ctx.release.id}`,
      ...envUndoNames(file, ctx.runToken),
    };
    // Copies made where the file system has no hard links, beside the temp file: a failed write removes them all.
    const leftovers = [tmp, `${names.saved}.tmp`, `${names.undo}.tmp`].map((f) => `${dir}/${f}`);
    let swapped: boolean;
    const startedAt = Date.now();
    try {
      await writeFile(sftp, host.name, `${dir}/${tmp}`, data, 0o600, {
        exclusive: true,
        fsync: true,
        verify: true,
        signal: ctx.signal,
      });
      swapped = await swapEnvOverSftp(sftp, host.name, names, { signal: ctx.signal });
    } catch (err) {
      throw await this.writeFailure(err, dir, leftovers, data.length, what);
    }
    const changed = changedKeys(
      old ? parseEnvFile(old, host.envDialect) : {},
      parseEnvFile(content, host.envDialect),
    );
    if (swapped) {
      const command = `write, read back and rename ${LAYOUT.shared}/${file} over SFTP`;
      return { state: 'written', changed, steps: sftpDone('env-swap', command, startedAt) };
    }
    // The shell swap decides again from what it finds, so it finishes whatever the SFTP swap got to.
    const step = envSwapStep({ ...names, size: data.length, sha256: sha256(data) });
    const r = await this.steps([step], { timeoutMs: 60_000, signal: ctx.signal });
    if (!r.ok) {
      const why = r.failed?.output?.trim() ?? '';
      const err = new DeployError('command-failed', `writing ${file} failed: ${why}`, { host: host.name });
      if (r.failed?.exitCode !== null && /no space/i.test(why))
        throw await this.writeFailure(err, dir, [`${dir}/${tmp}`], data.length, what);
      throw err;
    }
    return { state: 'written', changed, steps: r };
  }

  /**
   * Undoes exactly what this run's secrets phase did to the env file (also a write whose channel was lost half
   * way, and a temp file it left); where it changed nothing, nothing happens.
   */
  async restoreSecrets(opts: { timeoutMs?: number } = {}): Promise<StepsOutcome | undefined> {
    const envFile = this.ctx.config.secrets?.file;
    if (!envFile) return undefined;
    await this.nothingLeft(opts.timeoutMs);
    return this.steps(
      [
        {
          name: 'restore-env',
          display: `restore ${envFile}`,
          script: undoEnvScript(this.ctx, this.config, envFile),
        },
      ],
      { timeoutMs: opts.timeoutMs ?? 30_000 },
    );
  }

  async snapshot(previous: string | null | undefined, opts: { infra: boolean }): Promise<SnapshotOutcome> {
    const { ctx, config: host } = this;
    await this.nothingLeft();
    let infra: string | undefined;
    let warnings: string[] = [];
    if (host.snapshot && opts.infra) {
      const provider = snapshotProvider(ctx, host, host.snapshot, this.shell);
      infra = snapshotName(ctx.release.id, ctx.runToken);
      let made: SnapshotAction;
      try {
        made = await provider.create(infra);
      } catch (err) {
        if (err instanceof SnapshotActionError) await this.auditActions(err.actions).catch(() => undefined);
        throw err;
      }
      ctx.audit('snapshot', host.name, `${provider.describe} snapshot ${infra}`);
      warnings = made.warnings ?? [];
      await this.auditActions([made]);
    }
    const point: RollbackPoint | undefined =
      previous === undefined
        ? undefined
        : {
            release: ctx.release.id,
            previous,
            infraSnapshot: infra,
            recordedAt: new Date().toISOString(),
            runId: ctx.run.id,
            token: ctx.runToken,
          };
    const display = `record ${LAYOUT.rollbackPoint(ctx.release.id)}`;
    const startedAt = Date.now();
    let text: string | undefined;
    try {
      const sftp = await (await this.conn()).sftp({ signal: ctx.signal });
      const opts = { signal: ctx.signal };
      text = point
        ? await recordPointOverSftp(sftp, ctx, host, point, opts)
        : await readPointOverSftp(sftp, ctx, host, opts);
    } catch (err) {
      // SFTP says only "Failure" for a full disk: the free space on the host says whether that was it.
      const file = `${host.path}/${LAYOUT.rollbackPoint(ctx.release.id)}`;
      throw await this.writeFailure(
        err,
        `${host.path}/${LAYOUT.meta}`,
        [`${file}.tmp`],
        4096,
        `recording ${LAYOUT.rollbackPoint(ctx.release.id)}`,
        host.path,
      );
    }
    let steps: StepsOutcome;
    if (text !== undefined) steps = sftpDone('rollback-point', display, startedAt);
    else {
      const r = await this.steps(
        [{ name: 'rollback-point', display, script: rollbackPointScript(ctx, host, point) }],
        { timeoutMs: 30_000, signal: ctx.signal },
      );
      if (!r.ok) throw stepError(r, host.name);
      text = (r.outputs['rollback-point'] ?? '').trim().split('\n').pop();
      steps = r;
    }
    const recorded = JSON.parse(text || '{}') as Partial<RollbackPoint>;
    return {
      point: recorded.previous !== undefined ? (recorded as RollbackPoint) : undefined,
      steps,
      warnings,
    };
  }

  async readRollbackPoint(): Promise<RollbackPoint | undefined> {
    const sftp = await (await this.conn()).sftp({ signal: this.ctx.signal });
    const text = await readPointOverSftp(sftp, this.ctx, this.config, { signal: this.ctx.signal });
    try {
      const point = JSON.parse(text) as Partial<RollbackPoint>;
      return point.release === undefined ? undefined : (point as RollbackPoint);
    } catch {
      return undefined;
    }
  }

  /**
   * Puts the release on the host and makes it current: upload (unless already complete there; the marker goes
   * last, so a release directory without it is never activated), then place, switch and up in one round trip.
   */
  async deploy(opts: DeployOptions): Promise<DeployOutcome> {
    const { ctx, config: host } = this;
    // A retry never starts while the previous attempt's command (a lost session's `up`) still runs.
    await this.nothingLeft();
    const conn = await this.conn();
    let made: Prepared = {};
    if (!opts.prepared) {
      const base = `${host.path}/${incomingDir(ctx)}`;
      const marker = {
        id: ctx.release.id,
        commit: ctx.release.commit,
        ref: ctx.release.ref,
        uploadedAt: new Date().toISOString(),
        runId: ctx.run.id,
      };
      try {
        await uploadTree(conn, base, ctx.files, { signal: ctx.signal });
        const sftp = await conn.sftp({ signal: ctx.signal });
        const envFile = ctx.config.secrets?.file;
        // The env file's link and the next `current` go with the upload, beside the marker; where one cannot be
        // made (the release has a file of that name, a dead run left the name), the deploy steps make it on the host.
        const [envLinked, currentLinked] = await Promise.all([
          envFile ? sftpSymlink(sftp, envLinkTarget(envFile), `${base}/${envFile}`) : Promise.resolve(false),
          sftpSymlink(sftp, `${LAYOUT.releases}/${ctx.release.id}`, `${host.path}/${incomingCurrent(ctx)}`),
          writeFile(
            sftp,
            host.name,
            `${base}/${LAYOUT.releaseMarker}`,
            Buffer.from(JSON.stringify(marker) + '\n'),
            0o644,
            { signal: ctx.signal },
          ),
        ]);
        made = { envLinked, currentLinked };
      } catch (err) {
        // A failed upload goes (it would only take the space a retry needs); a lost one is reused by the retry.
        const size = ctx.files.reduce((n, f) => n + f.data.length, 0);
        throw await this.writeFailure(err, base, [base], size, `release ${ctx.release.id}`, host.path);
      }
    }
    const r = await this.steps(deploySteps(ctx, host, opts.stage, opts.previous, made), {
      timeoutMs: host.deploy.timeoutMs + 60_000,
      signal: ctx.signal,
    });
    return {
      ok: r.ok,
      steps: r.steps,
      failed: r.failed,
      switched: r.steps.some((s) => s.name === 'switch' && s.ok),
      version: r.steps.some((s) => s.name === 'switch' && s.ok) ? ctx.release.id : undefined,
    };
  }

  healthSubject(stage: string, version?: string | null): HealthSubject {
    const { ctx, config: host } = this;
    const release = version ?? ctx.release.id;
    const env = releaseEnv(host, ctx.config.project, { id: release, commit: ctx.release.commit }, stage);
    return {
      name: host.name,
      release,
      vars: sshTemplateVars(ctx, host, stage, release),
      env,
      exec: (command, o) => this.exec(command, o),
      compose:
        host.deploy.strategy === 'compose'
          ? (check, o) =>
              probeCompose(this.shell, host, ctx.config.project, env, check, {
                ...o,
                redact: (t) => ctx.redactor.redact(t),
              })
          : undefined,
    };
  }

  /**
   * Returns the host to `opts.to`: first makes sure nothing of this run still runs there (a command whose channel
   * was lost goes on running on the host, and would finish after the rollback), then the infrastructure snapshot
   * where one was taken (it resets the disk, so it comes before anything written), then the release: env file,
   * `current`, the stack. Under cancellation the release part is handed over to the host.
   */
  async rollback(opts: RollbackOptions): Promise<RollbackOutcome> {
    const { ctx, config: host } = this;
    const handOver = opts.handOverWaitMs !== undefined;
    // The wait is a budget for the whole rollback: what making sure of the host costs comes out of it.
    const handOverBy = Date.now() + (opts.handOverWaitMs ?? 0);
    const gone = await this.ensureNothingRunning(
      handOver ? Math.min(opts.handOverWaitMs ?? 0, 3000) : undefined,
    );
    if (!gone.ok)
      throw new DeployError(
        gone.error?.errorClass ?? 'command-failed',
        `not rolled back: ${gone.error?.message ?? `${host.name}: its state is unknown`}`,
        { host: host.name },
      );
    const out: RollbackOutcome = { ok: false, steps: [], actions: [] };
    const snap = host.snapshot;
    if (snap?.rollbackOnFailure && opts.infraSnapshot && !handOver) {
      let back: SnapshotAction;
      try {
        back = await snapshotProvider(ctx, host, snap, this.shell).rollback(opts.infraSnapshot);
      } catch (err) {
        if (err instanceof SnapshotActionError) {
          for (const a of err.actions) ctx.audit('rollback', host.name, a.detail);
          await this.auditActions(err.actions).catch(() => undefined);
        }
        throw err;
      }
      out.infraSnapshot = opts.infraSnapshot;
      if (snap.provider === 'proxmox') await this.waitForHost(VM_BACK_TIMEOUT_MS);
      // Written once the guest is back: the VM rollback rewound its disk, audit log included.
      ctx.audit('rollback', host.name, back.detail);
      await this.auditActions([back]).catch(() => undefined);
    }
    // A manual rollback returns from whatever runs now: its saved env file and log lines name that release.
    const from = opts.from ? { ...ctx, release: { ...ctx.release, id: opts.from } } : ctx;
    if (handOver)
      return { ...out, ...(await this.handOver(opts.stage, opts.to, handOverBy - Date.now(), from)) };
    for (let attempt = 1; ; attempt++) {
      let r: StepsResult | undefined;
      let err: unknown;
      try {
        r = await this.steps(rollbackSteps(from, host, opts.stage, opts.to), {
          timeoutMs: host.deploy.timeoutMs + 60_000,
          signal: ctx.signal,
        });
      } catch (e) {
        err = e;
      }
      if (r?.ok) return { ...out, ok: true, steps: r.steps, failed: undefined };
      if (ctx.signal.aborted) {
        // Cancelled while rolling back: the runner kills us in seconds, and a stack's `up` cut half way would leave
        // the host worse off than either release. What this attempt left is killed and the rollback, which is
        // safe to run again, goes on detached on the host.
        const t0 = Date.now();
        await this.nothingLeft(1500);
        const waitMs = Math.max(1000, CANCELLED_ROLLBACK_WAIT_MS - (Date.now() - t0));
        return { ...out, ...(await this.handOver(opts.stage, opts.to, waitMs, from)) };
      }
      const lost = err !== undefined ? lostChannel(err) : r?.failed?.exitCode === null;
      if (!lost || attempt >= ROLLBACK_ATTEMPTS) {
        if (err !== undefined) throw err;
        return { ...out, ok: false, steps: r?.steps ?? [], failed: r?.failed };
      }
      // The session died under the rollback: make sure nothing of it still runs, then run it again on a fresh one.
      ctx.emit({
        type: 'log',
        level: 'warn',
        message: `${host.name}: the rollback lost its SSH session (${err !== undefined ? toDeployError(err).message : `step ${r?.failed?.name} got no exit status`}); trying again`,
      });
      await this.nothingLeft();
    }
  }

  private async handOver(
    stage: string,
    to: string | null,
    waitMs: number,
    run: ScriptRun = this.ctx,
  ): Promise<RollbackOutcome> {
    const waitS = Math.max(0, Math.floor(waitMs / 1000));
    const { script, logPath } = handOverScript(run, this.config, stage, to, waitS);
    const res = await this.exec(script, { timeoutMs: waitMs + 5000 });
    const rc = /^rc=(\S+)/.exec(res.stdout)?.[1];
    const finished = rc !== undefined && rc !== 'running';
    const output = res.stdout.replace(/^rc=\S+\n?/, '');
    return {
      ok: finished && rc === '0',
      steps: [],
      handedOver: true,
      pending: !finished || undefined,
      logFile: `${this.config.path}/${logPath}`,
      failed:
        finished && rc !== '0'
          ? { name: 'rollback', ok: false, durationMs: 0, output, exitCode: Number(rc) }
          : undefined,
    };
  }

  /** After a VM rollback the host reboots: wait until SSH answers again, on a fresh connection. */
  private async waitForHost(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const res = await this.exec('true', { timeoutMs: 10_000 });
        if (res.code === 0) return;
      } catch (err) {
        last = err;
      }
      await sleep(2000);
    }
    throw new DeployError(
      'unreachable',
      `${this.name} did not answer SSH within ${Math.round(timeoutMs / 1000)}s of its snapshot rollback: ${(last as Error)?.message ?? ''}`,
      { host: this.name },
    );
  }

  /**
   * When a command of this run lost its channel, it may still run on the host: kill every process of this run
   * there (over a fresh connection if the old one died, trying to reach the host again for a while) and wait until
   * none is left. `ok: false` when that could not be made sure: the host could not be reached, or pids outlived the
   * kill (the host is then marked for a human too). Either way the host's state is unknown.
   */
  async ensureNothingRunning(waitMs?: number): Promise<{ ok: boolean; left?: string; error?: DeployError }> {
    if (!this.abandoned) return { ok: true };
    const name = this.name;
    this.reconnectUntil ??= Date.now() + ORPHAN_RECONNECT_MS;
    const deadline = Math.min(Date.now() + (waitMs ?? ORPHAN_RECONNECT_MS), this.reconnectUntil);
    let conn: SshConnection | undefined;
    let last: DeployError | undefined;
    for (;;) {
      try {
        conn = await this.conn();
        break;
      } catch (err) {
        last = toDeployError(err, 'unreachable');
        if (!['unreachable', 'timeout'].includes(last.errorClass) || Date.now() + 1000 >= deadline) break;
        await sleep(1000);
      }
    }
    const unsure = (why: string, errorClass: ErrorClass = 'unreachable') =>
      new DeployError(errorClass, `commands of this run may still run on ${name}: ${why}`, { host: name });
    // The class stays what refused the connection: a changed host key is never retried, a dropped link may be.
    if (!conn)
      return {
        ok: false,
        error: unsure(`it cannot be reached to stop them (${last?.message ?? ''})`, last?.errorClass),
      };
    const waitS = Math.max(1, Math.round(Math.min(waitMs ?? Infinity, ORPHAN_WAIT_S * 1000) / 1000));
    let res: ExecResult;
    try {
      await conn.killAndWait();
      res = await conn.exec(waitGoneScript(this.ctx, this.config, waitS), {
        timeoutMs: waitS * 1000 + 10_000,
      });
    } catch (err) {
      return { ok: false, error: unsure(`stopping them failed (${toDeployError(err).message})`) };
    }
    if (res.stdout.includes('gone')) {
      this.abandoned = false;
      this.reconnectUntil = undefined;
      return { ok: true };
    }
    const left = /left=(.*)/.exec(res.stdout)?.[1]?.trim() ?? '?';
    const error = new DeployError(
      'command-failed',
      `commands of this run still run on ${name} after being killed (pids ${left}); its state is unknown`,
      { host: name },
    );
    await this.markNeedsAttention(
      { time: new Date().toISOString(), reason: 'commands-survived-kill', pids: left, error: error.message },
      { timeoutMs: 10_000 },
    ).catch(() => undefined);
    return { ok: false, left, error };
  }

  /** Throws ensureNothingRunning's error when it could not make sure that nothing of this run runs on the host. */
  private async nothingLeft(waitMs?: number): Promise<void> {
    const r = await this.ensureNothingRunning(waitMs);
    if (!r.ok)
      throw r.error ?? new DeployError('unreachable', `${this.name}: state unknown`, { host: this.name });
  }

  /**
   * A write that failed (SFTP or the swap): removes what it left in `remove` and, where the host answers, says
   * whether the disk is full, with the free space read from the host and what the write needed. A lost channel
   * is passed on as it is (nothing can be read, and a retry reuses what was written).
   */
  private async writeFailure(
    err: unknown,
    dir: string,
    remove: string[],
    need: number,
    what: string,
    dfDir?: string,
  ): Promise<DeployError> {
    const e = toDeployError(err, 'command-failed');
    if (e.errorClass !== 'command-failed') return e;
    const where = dfDir ?? dir;
    let free: number;
    try {
      const res = await this.exec(freeSpaceScript(where, remove), { timeoutMs: 15_000 });
      free = Number(/free=(\d+)/.exec(res.stdout)?.[1] ?? NaN);
    } catch {
      return e;
    }
    if (!Number.isFinite(free)) return e;
    if (free < need + SPACE_SLACK_BYTES || /no space|ENOSPC/i.test(e.message))
      return new DeployError(
        'precondition',
        `no space left on ${this.name}: ${formatBytes(free)} free under ${where}, ${what} needs ${formatBytes(need)} (${e.message})`,
        { host: this.name },
      );
    return new DeployError('command-failed', `${e.message} (${formatBytes(free)} free under ${where})`, {
      host: this.name,
    });
  }

  async settle(opts: {
    stage: string;
    previous: string | null;
    unchanged: boolean;
    durationMs?: number;
    infraSnapshot?: string;
  }): Promise<void> {
    const { ctx, config: host } = this;
    const line = logLine(ctx, host, {
      event: 'deploy',
      stage: opts.stage,
      previous: opts.previous,
      result: opts.unchanged ? 'unchanged' : 'deployed',
      durationMs: opts.durationMs,
    });
    const protect = [ctx.release.id, opts.previous ?? ''];
    // The release log line and the pruning share one round trip.
    await this.exec(`cd ${shQuote(host.path)} && ${line}\n${pruneScript(ctx, host, protect)}`, {
      timeoutMs: 120_000,
    }).catch(() => undefined);
    if (opts.infraSnapshot) await this.pruneSnapshots(opts.infraSnapshot);
  }

  /** Old infrastructure snapshots beyond `keep`, never the one this release's rollback needs. */
  private async pruneSnapshots(protect: string): Promise<void> {
    const { ctx, config: host } = this;
    if (!host.snapshot) return;
    let pruned: SnapshotAction[] = [];
    try {
      pruned = await snapshotProvider(ctx, host, host.snapshot, this.shell).prune([protect]);
    } catch (err) {
      if (err instanceof SnapshotActionError) pruned = err.actions;
      ctx.emit({
        type: 'log',
        level: 'warn',
        message: `${host.name}: pruning old snapshots failed: ${ctx.errorInfo(err).message}`,
      });
    }
    for (const a of pruned) ctx.audit('snapshot', host.name, a.detail);
    await this.auditActions(pruned).catch(() => undefined);
  }

  /** A release-log line; a cancellation is an action on the host as well, so it goes into the audit log too. */
  async appendLog(entry: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<void> {
    const cancelled = entry.event === 'cancelled' || entry.result === 'cancelled';
    const { stage, previous } = entry;
    await this.exec(
      [
        `cd ${shQuote(this.config.path)} || exit 1`,
        logLine(this.ctx, this.config, entry),
        cancelled ? auditLine(this.ctx, this.config, 'cancelled', undefined, { stage, previous }) : '',
      ].join('\n'),
      { timeoutMs: opts.timeoutMs ?? 30_000 },
    );
  }

  /** Writes the record; a host that dropped is tried again until `timeoutMs` (it may be back in seconds). */
  async markNeedsAttention(
    record: Record<string, unknown>,
    opts: { timeoutMs?: number } = {},
  ): Promise<void> {
    // A host already found gone for the whole reconnect window gets one more try, not another wait.
    const deadline = Math.min(Date.now() + (opts.timeoutMs ?? 15_000), this.reconnectUntil ?? Infinity);
    for (;;) {
      try {
        await this.exec(needsAttentionScript(this.ctx, this.config, record), {
          timeoutMs: Math.max(1000, deadline - Date.now()),
        });
        return;
      } catch (err) {
        const retry = ['unreachable', 'timeout'].includes(toDeployError(err).errorClass);
        if (!retry || Date.now() + 1000 >= deadline) throw err;
        await sleep(1000);
      }
    }
  }

  /** What `current` names, read only once nothing of this run runs there any more (else it rejects). */
  async readCurrent(opts: { timeoutMs?: number } = {}): Promise<{ version: string | null; onNew: boolean }> {
    await this.nothingLeft(opts.timeoutMs);
    const known = this.currentAtRelease;
    if (known !== undefined) return { version: known, onNew: known === this.ctx.release.id };
    const res = await this.exec(readCurrentScript(this.config), { timeoutMs: opts.timeoutMs ?? 30_000 });
    const version = res.stdout.trim() || null;
    return { version, onNew: version === this.ctx.release.id };
  }

  async runTests(
    command: string,
    opts: { stage: string; timeoutMs: number; junit?: string },
  ): Promise<{
    exitCode: number | null;
    output: string;
    junitXml?: string;
    junitMissing?: string;
    timedOut?: boolean;
  }> {
    const { ctx, config: host } = this;
    const mark = `__hd_tests_${randomBytes(6).toString('hex')}__`;
    const script = testsScript({
      host,
      env: releaseEnv(host, ctx.config.project, ctx.release, opts.stage),
      command,
      timeoutMs: opts.timeoutMs,
      junit: opts.junit,
      mark,
    });
    let res: ExecResult;
    try {
      await this.nothingLeft();
      res = await this.exec(script, { timeoutMs: opts.timeoutMs + TESTS_OUTER_GRACE_MS, signal: ctx.signal });
    } catch (err) {
      return { exitCode: null, output: toDeployError(err).message };
    }
    const parsed = parseTestsOutput(res.stdout, res.stderr, res.code, mark);
    return {
      ...parsed,
      junitMissing: opts.junit && parsed.junitXml === undefined ? `${host.name}:${opts.junit}` : undefined,
    };
  }

  /** Kills this run's commands on the host; what holds the host next (a rollback, a lock release) checks they went. */
  async kill(): Promise<void> {
    this.abandoned = true;
    await (await this.conn()).kill();
  }

  /** Gives the connection back (once work in flight on it ended); the next call opens a fresh one. */
  async close(): Promise<void> {
    await this.shared.pool.release(this.name);
  }

  status(): Promise<TargetStatus> {
    return readStatus(this.ctx, this.config, this.shell);
  }

  rollbackFacts(): Promise<RollbackFacts> {
    return readRollbackFacts(this.config, this.shell);
  }

  releaseLockAsOperator(opts: { operator: string; force: boolean }): Promise<OperatorLockRelease> {
    return operatorReleaseLock(this.ctx, this.config, this.shell, opts);
  }

  async readReleaseLog(): Promise<string> {
    const r = await this.exec(
      `cat ${shQuote(`${this.config.path}/${LAYOUT.releaseLog}`)} 2>/dev/null; true`,
      {
        timeoutMs: 60_000,
      },
    );
    return r.stdout;
  }

  private auditActions(actions: SnapshotAction[]): Promise<void> {
    return auditSnapshotActions(this.ctx, this.config, this.shell, actions);
  }
}
