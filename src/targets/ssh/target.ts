import { createHash, randomBytes } from 'node:crypto';
import type { HostConfig } from '../../config/types';
import { DeployError, toDeployError } from '../../errors';
import type { HealthSubject } from '../../health/subject';
import { probeCompose } from '../../health/compose';
import { killPattern, type SshConnection } from '../../remote/connection';
import type { ConnectionPool } from '../../remote/pool';
import { shQuote } from '../../remote/quote';
import { readFileIfExists, uploadTree, writeFile } from '../../remote/sftp';
import { runSteps, type Step, type StepsResult } from '../../remote/steps';
import type { RunContext } from '../../run/context';
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
import { lockOwner, logLine } from './scripts/common';
import { envSwapStep } from './scripts/env';
import { heartbeatScript, releaseLockScript } from './scripts/lock';
import { preflightSteps, preflightValues } from './scripts/preflight';
import {
  deploySteps,
  handOverScript,
  incomingDir,
  needsAttentionScript,
  pruneScript,
  readCurrentScript,
  readRollbackPointScript,
  restoreEnvScript,
  rollbackPointScript,
  rollbackSteps,
} from './scripts/release';
import { parseTestsOutput, testsScript, TESTS_KILL_AFTER_S } from './scripts/tests';
import { auditSnapshotActions } from './snapshot-audit';
import { operatorReleaseLock, readStatus } from './status';
import { sshTemplateVars } from './vars';

/** How long a host may take to answer SSH again after its VM was rolled back (and booted). */
const VM_BACK_TIMEOUT_MS = 180_000;
/** The SSH command around the tests gets this much on top of their own limit. */
const TESTS_OUTER_GRACE_MS = (TESTS_KILL_AFTER_S + 25) * 1000;
/** How long a rollback waits for this run's abandoned commands on the host to be gone. */
const ORPHAN_WAIT_S = 10;

export interface SshShared {
  pool: ConnectionPool;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** A step failure as a DeployError of `errorClass`, quoting the step's exit code and last output lines. */
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
    const conn = await this.conn();
    try {
      const res = await conn.exec(script, opts);
      if (res.code === null && !res.signal) this.abandoned = true;
      return res;
    } catch (err) {
      if (err instanceof DeployError && ['unreachable', 'timeout', 'cancelled'].includes(err.errorClass))
        this.abandoned = true;
      throw err;
    }
  }

  private async steps(
    steps: Step[],
    opts: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<StepsResult> {
    const conn = await this.conn();
    try {
      const r = await runSteps(conn, steps, opts);
      if (r.steps.some((s) => s.exitCode === null)) this.abandoned = true;
      return r;
    } catch (err) {
      if (err instanceof DeployError && ['unreachable', 'timeout', 'cancelled'].includes(err.errorClass))
        this.abandoned = true;
      throw err;
    }
  }

  /** The host as a Shell, for snapshot providers and checks that only need to run a command there. */
  private get shell(): Shell {
    return { exec: (script, opts) => this.exec(script, opts) };
  }

  async preflight(phase: string): Promise<PreflightOutcome> {
    const { ctx, config: host } = this;
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
        const hint = stale
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
    return {
      current,
      onNew: current === ctx.release.id,
      prepared: kv.complete === 'yes',
      lock: kv.lock === 'ours' ? 'ours' : kv.lock === 'taken-over' ? 'taken-over' : 'acquired',
      steps: r,
      detail: { freeBytes: Number(kv.free ?? 0) },
    };
  }

  async heartbeat(): Promise<boolean> {
    const res = await this.exec(heartbeatScript(this.ctx, this.config, new Date().toISOString()), {
      timeoutMs: 15_000,
    });
    return !res.stdout.includes('lost');
  }

  async releaseLock(opts: { timeoutMs?: number } = {}): Promise<boolean> {
    if (!(await this.ensureNothingRunning(opts.timeoutMs)).ok) return false;
    const res = await this.exec(releaseLockScript(this.ctx, this.config), {
      timeoutMs: opts.timeoutMs ?? 30_000,
    });
    return res.stdout.includes('released');
  }

  /**
   * Replaces the host's env file atomically: 0600 temp file in the same folder, fsync, size+sha256 check on the
   * host, keep the old file for rollback, rename over. An interrupted run leaves only a temp file the next run's
   * pre-flight sweeps.
   */
  async writeSecrets(file: string, content: string): Promise<SecretsOutcome> {
    const { ctx, config: host } = this;
    const conn = await this.conn();
    const sftp = await conn.sftp({ signal: ctx.signal });
    const dir = `${host.path}/${LAYOUT.shared}`;
    const tmp = `${file}.tmp-${ctx.runToken}`;
    const old = (await readFileIfExists(sftp, host.name, `${dir}/${file}`, { signal: ctx.signal }))?.toString(
      'utf8',
    );
    if (old !== undefined && sha256(old) === sha256(content)) return { state: 'unchanged', changed: [] };
    const data = Buffer.from(content, 'utf8');
    await writeFile(sftp, host.name, `${dir}/${tmp}`, data, 0o600, {
      exclusive: true,
      fsync: true,
      signal: ctx.signal,
    });
    const step = envSwapStep({
      dir,
      file,
      tmp,
      saved: `${file}.before-${ctx.release.id}`,
      size: data.length,
      sha256: sha256(data),
    });
    const r = await this.steps([step], { timeoutMs: 60_000, signal: ctx.signal });
    if (!r.ok)
      throw new DeployError('command-failed', `writing ${file} failed: ${r.failed?.output?.trim()}`, {
        host: host.name,
      });
    return {
      state: 'written',
      changed: changedKeys(
        old ? parseEnvFile(old, host.envDialect) : {},
        parseEnvFile(content, host.envDialect),
      ),
      steps: r,
    };
  }

  async restoreSecrets(opts: { timeoutMs?: number } = {}): Promise<StepsOutcome | undefined> {
    const envFile = this.ctx.config.secrets?.file;
    if (!envFile) return undefined;
    return this.steps(
      [
        {
          name: 'restore-env',
          display: `restore ${envFile}`,
          script: restoreEnvScript(this.ctx, this.config, envFile),
        },
      ],
      { timeoutMs: opts.timeoutMs ?? 30_000 },
    );
  }

  async snapshot(previous: string | null | undefined, opts: { infra: boolean }): Promise<SnapshotOutcome> {
    const { ctx, config: host } = this;
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
    const r = await this.steps(
      [
        {
          name: 'rollback-point',
          display: `record ${LAYOUT.rollbackPoint(ctx.release.id)}`,
          script: rollbackPointScript(ctx, host, point),
        },
      ],
      { timeoutMs: 30_000, signal: ctx.signal },
    );
    if (!r.ok) throw stepError(r, host.name);
    const recorded = JSON.parse(
      (r.outputs['rollback-point'] ?? '').trim().split('\n').pop() || '{}',
    ) as Partial<RollbackPoint>;
    return {
      point: recorded.previous !== undefined ? (recorded as RollbackPoint) : undefined,
      steps: r,
      warnings,
    };
  }

  async readRollbackPoint(): Promise<RollbackPoint | undefined> {
    const res = await this.exec(readRollbackPointScript(this.ctx, this.config), {
      timeoutMs: 30_000,
      signal: this.ctx.signal,
    });
    try {
      return JSON.parse(res.stdout.trim()) as RollbackPoint;
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
    const conn = await this.conn();
    if (!opts.prepared) {
      const base = `${host.path}/${incomingDir(ctx)}`;
      const marker = {
        id: ctx.release.id,
        commit: ctx.release.commit,
        ref: ctx.release.ref,
        uploadedAt: new Date().toISOString(),
        runId: ctx.run.id,
      };
      await uploadTree(conn, base, ctx.files, { signal: ctx.signal });
      const sftp = await conn.sftp({ signal: ctx.signal });
      await writeFile(
        sftp,
        host.name,
        `${base}/${LAYOUT.releaseMarker}`,
        Buffer.from(JSON.stringify(marker) + '\n'),
        0o644,
        { signal: ctx.signal },
      );
    }
    const r = await this.steps(deploySteps(ctx, host, opts.stage, opts.previous), {
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
    const gone = await this.ensureNothingRunning(
      handOver ? Math.min(opts.handOverWaitMs ?? 0, 3000) : undefined,
    );
    if (!gone.ok)
      throw new DeployError(
        'command-failed',
        `not rolled back: commands of this run still run on ${host.name} after being killed (pids ${gone.left}); its state is unknown`,
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
    if (handOver) return { ...out, ...(await this.handOver(opts.stage, opts.to, opts.handOverWaitMs ?? 0)) };
    // A manual rollback returns from whatever runs now: its saved env file and log lines name that release.
    const from = opts.from ? { ...ctx, release: { ...ctx.release, id: opts.from } } : ctx;
    const r = await this.steps(rollbackSteps(from, host, opts.stage, opts.to), {
      timeoutMs: host.deploy.timeoutMs + 60_000,
    });
    return { ...out, ok: r.ok, steps: r.steps, failed: r.failed };
  }

  private async handOver(stage: string, to: string | null, waitMs: number): Promise<RollbackOutcome> {
    const waitS = Math.max(0, Math.floor(waitMs / 1000));
    const { script, logPath } = handOverScript(this.ctx, this.config, stage, to, waitS);
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
   * there (over a fresh connection if the old one died) and wait until none is left. `ok: false` names the pids
   * that outlived the kill; the host's state is then unknown.
   */
  async ensureNothingRunning(waitMs?: number): Promise<{ ok: boolean; left?: string }> {
    if (!this.abandoned) return { ok: true };
    const conn = await this.conn();
    await conn.killAndWait();
    const waitS = Math.max(1, Math.round((waitMs ?? ORPHAN_WAIT_S * 1000) / 1000));
    // The check's own shell and its `timeout` carry this run's token too: they are left out by pid. pgrep writes
    // to a file, not into $(...), whose subshell would carry the same command line and match as well.
    const f = `${this.config.path}/${LAYOUT.meta}/.alive-${this.ctx.runToken}`;
    const res = await conn.exec(
      [
        `p=${shQuote(killPattern(this.ctx.runToken))}; f=${shQuote(f)}; i=0`,
        'while :; do',
        '  pgrep -f "$p" > "$f"; l=',
        '  while read -r x; do [ "$x" = "$$" ] || [ "$x" = "$PPID" ] || l="$l $x"; done < "$f"',
        '  [ -z "$l" ] && { rm -f "$f"; echo gone; exit 0; }',
        `  [ $i -ge ${waitS * 5} ] && { rm -f "$f"; echo "left=$l"; exit 0; }`,
        '  sleep 0.2; i=$((i + 1))',
        'done',
      ].join('\n'),
      { timeoutMs: waitS * 1000 + 10_000 },
    );
    if (res.stdout.includes('gone')) {
      this.abandoned = false;
      return { ok: true };
    }
    return { ok: false, left: /left=(.*)/.exec(res.stdout)?.[1]?.trim() ?? '?' };
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

  async appendLog(entry: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<void> {
    await this.exec(`cd ${shQuote(this.config.path)} || exit 1\n${logLine(this.ctx, this.config, entry)}`, {
      timeoutMs: opts.timeoutMs ?? 30_000,
    });
  }

  async markNeedsAttention(
    record: Record<string, unknown>,
    opts: { timeoutMs?: number } = {},
  ): Promise<void> {
    await this.exec(needsAttentionScript(this.ctx, this.config, record), {
      timeoutMs: opts.timeoutMs ?? 15_000,
    });
  }

  async readCurrent(opts: { timeoutMs?: number } = {}): Promise<{ version: string | null; onNew: boolean }> {
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

  async kill(): Promise<void> {
    await (await this.conn()).kill();
  }

  /** Gives the connection back (once work in flight on it ended); the next call opens a fresh one. */
  async close(): Promise<void> {
    await this.shared.pool.release(this.name);
  }

  status(): Promise<TargetStatus> {
    return readStatus(this.ctx, this.config, this.shell);
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
