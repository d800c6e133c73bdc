import { randomBytes } from 'node:crypto';
import type { Config, HostConfig, StageConfig } from '../config/types';
import { syncEnvFile } from '../deploy/env-sync';
import {
  appendReleaseLog,
  deployRelease,
  heartbeat,
  preflight,
  pruneReleases,
  readCurrent,
  readRollbackPoint,
  recordRollbackPoint,
  releaseLock,
  restoreEnvFile,
  rollbackRelease,
  type PreflightState,
  type RollbackPoint,
} from '../deploy/host-ops';
import { snapshotName, snapshotProvider } from '../snapshot/provider';
import { releaseIdFor } from '../deploy/layout';
import { DeployError, isRetryable, toDeployError } from '../errors';
import { filesAtCommit } from '../git/source';
import { runHealthChecks } from '../health/run';
import { ConnectionPool } from '../remote/pool';
import { mapLimit } from '../remote/semaphore';
import type { UploadFile } from '../remote/sftp';
import type { StepsResult } from '../remote/steps';
import type {
  AuditRecord,
  AttemptReport,
  DeployStatus,
  ErrorInfo,
  HostPhaseReport,
  PhaseReport,
  Report,
  RollbackReport,
} from '../report/types';
import { collectSecrets, renderEnvFile } from '../secrets/env-file';
import type { Redactor } from '../secrets/redact';
import { sleep } from '../util/duration';
import type { RunContext, RunInfo } from './context';
import type { DeployEvent, EventListener } from './events';
import { buildPlan, type Plan, type PlannedPhase } from './plan';
import { backoffDelay } from './retry';
import { runTests } from './tests-runner';

export interface RunOptions {
  config: Config;
  ref: string;
  commit: string;
  phases: string[];
  targets?: string[];
  run?: RunInfo;
  env?: NodeJS.ProcessEnv;
  redactor: Redactor;
  signal?: AbortSignal;
  onEvent?: EventListener;
  fallbackKey?: string;
  fallbackKnownHosts?: string;
  files?: UploadFile[];
  runToken?: string;
  /** Tests inject a deterministic random for backoff jitter. */
  random?: () => number;
  force?: boolean;
}

interface HostRun {
  host: HostConfig;
  stage?: string;
  before: string | null; // the rollback target
  startCurrent: string | null; // what `current` named when pre-flight looked
  locked: boolean;
  releaseComplete: boolean;
  touched: boolean; // this run moved `current` (or may have: the host dropped mid-step)
  envWritten: boolean; // this run's secrets phase replaced the env file
  onNew: boolean; // `current` names this run's release
  rollback?: RollbackReport;
  infraSnapshot?: string;
}

/** Thrown inside the pipeline to stop it; carries the status the failure rules decided. */
class Stop extends Error {
  constructor(
    readonly status: DeployStatus,
    readonly info: ErrorInfo,
  ) {
    super(info.message);
  }
}

/**
 * Executes a plan: pre-flight → secrets → snapshot → stages (deploy, health, tests; retry) → verify, applying the
 * failure rules, and always returns a report; it never throws for a failed deploy.
 */
export async function runDeploy(opts: RunOptions): Promise<Report> {
  const started = Date.now();
  const { config, redactor } = opts;
  const controller = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
  const runToken = opts.runToken ?? randomBytes(6).toString('hex');
  const env = opts.env ?? process.env;
  const release = { id: releaseIdFor(opts.commit), commit: opts.commit, ref: opts.ref };
  const phases: PhaseReport[] = [];
  const hostRuns = new Map<string, HostRun>();
  const emit = (e: DeployEvent) => {
    try {
      void opts.onEvent?.(redactor.redactDeep(e));
    } catch {
      /* a listener must never break a deploy */
    }
  };
  const errorInfo = (err: unknown, where: { phase?: string; host?: string } = {}): ErrorInfo => {
    const e = toDeployError(err);
    return {
      class: e.errorClass,
      message: redactor.redact(e.message),
      phase: e.phase ?? where.phase,
      host: e.host ?? where.host,
    };
  };
  const pool = new ConnectionPool(config, {
    env,
    redactor,
    runToken,
    fallbackKey: opts.fallbackKey,
    fallbackKnownHosts: opts.fallbackKnownHosts,
  });
  const ctx: RunContext = {
    config,
    release,
    run: opts.run ?? {},
    runToken,
    pool,
    redactor,
    signal,
    env,
    files: [],
    emit,
    errorInfo,
    force: opts.force,
  };
  let heartbeatTimer: NodeJS.Timeout | undefined;
  const audit: AuditRecord[] = [];
  const record = (action: AuditRecord['action'], host: string, detail?: string) =>
    audit.push({ time: new Date().toISOString(), action, host, detail });

  let plan: Plan | undefined;
  let status: DeployStatus = 'success';
  let error: ErrorInfo | undefined;
  let lastPhase = 'preflight';
  let rollbackFailed = false;

  const phaseReport = (p: PlannedPhase): PhaseReport => {
    const r: PhaseReport = {
      name: p.name,
      kind: p.kind,
      status: 'ok',
      startedAt: new Date().toISOString(),
      durationMs: 0,
      hosts: [],
    };
    phases.push(r);
    lastPhase = p.name;
    emit({ type: 'phase-start', phase: p.name, hosts: p.hosts });
    return r;
  };
  const endPhase = (r: PhaseReport, t0: number, err?: ErrorInfo) => {
    r.durationMs = Date.now() - t0;
    if (err) {
      r.status = 'failed';
      r.error = err;
    }
    emit({ type: 'phase-end', phase: r.name, ok: !err, durationMs: r.durationMs, error: err });
  };
  const hostReport = (
    host: string,
    t0: number,
    res?: StepsResult,
    err?: unknown,
    phase?: string,
  ): HostPhaseReport => {
    const ok = !err && (res?.ok ?? true);
    const info = err ? errorInfo(err, { host, phase }) : undefined;
    const r: HostPhaseReport = {
      host,
      ok,
      durationMs: Date.now() - t0,
      attempts: [{ attempt: 1, ok, durationMs: Date.now() - t0, error: info }],
      steps: res?.steps ?? [],
      health: [],
      error: info,
    };
    for (const s of r.steps) emit({ type: 'host-step', phase: phase ?? '', host, step: s });
    emit({
      type: 'host-end',
      phase: phase ?? '',
      host,
      ok,
      durationMs: r.durationMs,
      error: info,
      attempt: 1,
    });
    return r;
  };

  /** Returns hosts to their rollback point; records each result on the host run and in the phase report. */
  const rollback = async (names: string[], phaseName: string, phase: PhaseReport) => {
    const targets = names
      .map((n) => hostRuns.get(n))
      .filter((h): h is HostRun => !!h && (h.touched || h.onNew));
    await mapLimit(targets, config.parallel, async (h) => {
      const t0 = Date.now();
      let r: RollbackReport;
      try {
        const res = await rollbackRelease(ctx, h.host, h.stage ?? phaseName, h.before);
        if (!res.ok)
          throw new DeployError(
            'command-failed',
            `rollback step "${res.failed?.name}" failed: ${(res.failed?.output ?? '').trim().slice(-300)}`,
            { host: h.host.name },
          );
        const checks = config.stages.find((s) => s.name === h.stage)?.health ?? [];
        if (h.before && checks.length) {
          // A rollback is done when the old release answers, not when its containers were started.
          const oldCtx: RunContext = { ...ctx, release: { ...release, id: h.before } };
          const bad = (await runHealthChecks(oldCtx, h.host, checks, h.stage ?? phaseName)).filter(
            (x) => !x.ok,
          );
          if (bad.length)
            throw new DeployError(
              'health-failed',
              `after rollback to ${h.before}: ${bad.map((b) => `${b.check}: ${b.lastError}`).join('; ')}`,
              { host: h.host.name },
            );
        }
        r = { ok: true, to: h.before, durationMs: Date.now() - t0 };
        const snap = h.host.snapshot;
        if (snap?.rollbackOnFailure && h.infraSnapshot) {
          await snapshotProvider(ctx, h.host, snap).rollback(h.infraSnapshot);
          r.infraSnapshot = h.infraSnapshot;
        }
        h.onNew = h.before === release.id;
        h.touched = false;
      } catch (err) {
        r = {
          ok: false,
          to: h.before,
          durationMs: Date.now() - t0,
          error: errorInfo(err, { host: h.host.name, phase: phaseName }),
        };
        rollbackFailed = true;
      }
      h.rollback = r;
      record('rollback', h.host.name, `${r.ok ? 'to' : 'FAILED, to'} ${h.before ?? '(none: stack stopped)'}`);
      emit({ type: 'rollback', phase: phaseName, host: h.host.name, ok: r.ok, to: r.to, error: r.error });
      const hr = phase.hosts.find((x) => x.host === h.host.name);
      if (hr) hr.rollback = r;
      else
        phase.hosts.push({
          host: h.host.name,
          ok: r.ok,
          durationMs: r.durationMs,
          attempts: [],
          steps: [],
          health: [],
          rollback: r,
        });
    });
  };

  try {
    plan = buildPlan(config, opts.phases, opts.targets);
    emit({
      type: 'run-start',
      project: config.project,
      release: release.id,
      commit: release.commit,
      phases: plan.phases.map((p) => p.name),
    });
    const stageOf = new Map<string, string>();
    for (const s of config.stages) for (const h of s.hosts) stageOf.set(h, s.name);
    for (const h of plan.hosts) {
      hostRuns.set(h, {
        host: config.hosts[h],
        stage: stageOf.get(h),
        before: null,
        startCurrent: null,
        locked: false,
        releaseComplete: false,
        touched: false,
        envWritten: false,
        onNew: false,
      });
    }
    let secretValues: Record<string, string> | undefined;

    for (const p of plan.phases) {
      if (signal.aborted)
        throw new Stop('aborted', { class: 'cancelled', message: 'the run was cancelled', phase: p.name });
      const t0 = Date.now();
      if (p.kind === 'preflight') {
        const r = phaseReport(p);
        try {
          if (config.secrets && plan.phases.some((x) => x.kind === 'secrets')) {
            secretValues = collectSecrets(config.secrets.keys, env);
            for (const v of Object.values(secretValues)) redactor.add(v);
          }
          if (plan.phases.some((x) => x.kind === 'stage'))
            ctx.files = opts.files ?? filesAtCommit(config.source, release.commit);
        } catch (err) {
          const info = errorInfo(err, { phase: p.name });
          endPhase(r, t0, info);
          throw new Stop('aborted', info);
        }
        r.hosts = await mapLimit(p.hosts, config.parallel, async (name) => {
          const h0 = Date.now();
          try {
            const st = await preflightWithWait(ctx, hostRuns.get(name) as HostRun, p.name);
            const hr = hostRuns.get(name) as HostRun;
            hr.locked = true;
            hr.before = st.current;
            hr.startCurrent = st.current;
            hr.onNew = st.current === release.id;
            hr.releaseComplete = st.releaseComplete;
            if (st.lock !== 'ours')
              record(st.lock === 'taken-over' ? 'lock-taken-over' : 'lock-acquired', name);
            const rep = hostReport(name, h0, st.result, undefined, p.name);
            rep.detail = {
              current: st.current,
              freeBytes: st.freeBytes,
              lock: st.lock,
              lockWaitMs: st.lockWaitMs,
            };
            return rep;
          } catch (err) {
            return hostReport(name, h0, undefined, err, p.name);
          }
        });
        const failed = r.hosts.find((h) => !h.ok);
        if (failed) {
          const info = failed.error as ErrorInfo;
          const n = r.hosts.filter((h) => !h.ok).length;
          endPhase(r, t0, {
            ...info,
            message: n > 1 ? `${info.message} (and ${n - 1} more host${n > 2 ? 's' : ''})` : info.message,
          });
          throw new Stop('aborted', r.error as ErrorInfo);
        }
        // Keep our locks visibly alive for as long as this run lives, so nobody can call them stale.
        const every = Math.max(2000, Math.min(60_000, config.lock.staleAfterMs / 3));
        heartbeatTimer = setInterval(() => {
          for (const h of hostRuns.values()) if (h.locked) void heartbeat(ctx, h.host).catch(() => undefined);
        }, every);
        heartbeatTimer.unref();
        endPhase(r, t0);
      } else if (p.kind === 'secrets' && config.secrets && secretValues) {
        const r = phaseReport(p);
        const values = secretValues;
        const file = config.secrets.file;
        r.hosts = await mapLimit(p.hosts, config.parallel, async (name) => {
          const h0 = Date.now();
          try {
            const res = await syncEnvFile(
              ctx,
              config.hosts[name],
              file,
              renderEnvFile(values, config.hosts[name].envDialect),
            );
            if (res.result && !res.result.ok)
              throw new DeployError(
                'command-failed',
                `writing ${file} failed: ${res.result.failed?.output?.trim()}`,
                { host: name },
              );
            if (res.state === 'written') hostRuns.get(name)!.envWritten = true;
            const rep = hostReport(name, h0, res.result, undefined, p.name);
            rep.detail = { file, state: res.state, changed: res.changed.join(',') };
            return rep;
          } catch (err) {
            return hostReport(name, h0, undefined, err, p.name);
          }
        });
        const failed = r.hosts.find((h) => !h.ok);
        if (failed) {
          endPhase(r, t0, failed.error);
          throw new Stop('aborted', failed.error as ErrorInfo);
        }
        endPhase(r, t0);
      } else if (p.kind === 'snapshot') {
        const r = phaseReport(p);
        r.hosts = await mapLimit(p.hosts, config.parallel, async (name) => {
          const h0 = Date.now();
          const hr = hostRuns.get(name) as HostRun;
          try {
            let infra: string | undefined;
            if (hr.host.snapshot) {
              // The infrastructure snapshot first: if it fails, nothing on the host has changed yet.
              const provider = snapshotProvider(ctx, hr.host, hr.host.snapshot);
              infra = snapshotName(release.id, runToken);
              await provider.create(infra);
              record('snapshot', name, `${provider.describe} snapshot ${infra}`);
            }
            const res = await recordRollbackPoint(ctx, hr.host, hr.onNew ? null : hr.before, infra);
            const point = JSON.parse(
              (res.outputs['rollback-point'] ?? '').trim().split('\n').pop() || '{}',
            ) as RollbackPoint;
            if (point.previous !== undefined) hr.before = point.previous;
            hr.infraSnapshot = point.infraSnapshot;
            record('snapshot', name, `rollback point: ${hr.before ?? '(none)'}`);
            const rep = hostReport(name, h0, res, undefined, p.name);
            rep.detail = { rollbackTo: hr.before };
            return rep;
          } catch (err) {
            return hostReport(name, h0, undefined, err, p.name);
          }
        });
        const failed = r.hosts.find((h) => !h.ok);
        if (failed) {
          endPhase(r, t0, failed.error);
          throw new Stop('aborted', failed.error as ErrorInfo);
        }
        // Hosts of earlier stages this run may roll back: their rollback point was recorded by an earlier job.
        for (const name of p.hosts.length
          ? (plan.phases.find((x) => x.kind === 'stage')?.rollbackScope ?? [])
          : []) {
          const hr = hostRuns.get(name) as HostRun;
          const point = await readRollbackPoint(ctx, hr.host).catch(() => undefined);
          if (point) {
            hr.before = point.previous;
            hr.infraSnapshot = point.infraSnapshot;
          }
        }
        endPhase(r, t0);
      } else if (p.kind === 'stage' && p.stage) {
        const stage = p.stage;
        const r = phaseReport(p);
        r.hosts = await mapLimit(stage.hosts, stage.parallel, (name) =>
          deployHost(ctx, hostRuns.get(name) as HostRun, stage, opts.random),
        );
        for (const hr of r.hosts)
          if (!hr.detail?.unchanged && hr.steps.some((st) => st.name === 'switch' && st.ok))
            record(
              'deploy',
              hr.host,
              `${release.id} (${hr.attempts.length} attempt${hr.attempts.length === 1 ? '' : 's'})`,
            );
        let failure = r.hosts.find((h) => !h.ok)?.error;
        if (!failure && stage.tests) {
          const tests = await runTests(ctx, stage.tests, stage.name, stage.hosts);
          r.tests = tests;
          emit({
            type: 'tests',
            phase: stage.name,
            on: tests.on,
            ok: tests.ok,
            exitCode: tests.exitCode,
            durationMs: tests.durationMs,
          });
          if (!tests.ok) {
            const last = tests.outputTail.trim().split('\n').slice(-3).join(' | ');
            failure = {
              class: 'tests-failed',
              message: `tests on ${tests.on} failed (exit ${tests.exitCode ?? 'none'}): ${last}`,
              phase: stage.name,
              host: tests.on === 'runner' ? undefined : tests.on,
            };
          }
        }
        if (failure) {
          const failedInfo = { ...failure, phase: stage.name };
          endPhase(r, t0, failedInfo);
          const toRollBack =
            stage.onFailure === 'rollback-all'
              ? [...hostRuns.values()].filter((h) => h.onNew || h.touched).map((h) => h.host.name)
              : stage.hosts;
          await rollback(toRollBack, stage.name, r);
          r.status = 'rolled_back';
          if (stage.onFailure === 'rollback-all') throw new Stop(decideStatus(hostRuns, stage), failedInfo);
          // rollback-stage: the stages before stay live; deploy nothing further, but still verify what is live.
          error = failedInfo;
          status = 'partial_success';
          const stillOn = [...hostRuns.values()].some((h) => h.onNew);
          if (!stillOn) throw new Stop('failed', failedInfo);
          skipRemainingStages(plan, p, phases);
          continue;
        }
        for (const name of stage.hosts) {
          const hr = hostRuns.get(name) as HostRun;
          await appendReleaseLog(ctx, hr.host, {
            event: 'deploy',
            stage: stage.name,
            previous: hr.before,
            result: 'deployed',
          }).catch(() => undefined);
          await pruneReleases(ctx, hr.host, [release.id, hr.before ?? '']).catch(() => undefined);
          if (hr.host.snapshot && hr.infraSnapshot) {
            await snapshotProvider(ctx, hr.host, hr.host.snapshot)
              .prune([hr.infraSnapshot])
              .catch((err: unknown) =>
                emit({
                  type: 'log',
                  level: 'warn',
                  message: `${name}: pruning old snapshots failed: ${errorInfo(err).message}`,
                }),
              );
          }
        }
        endPhase(r, t0);
      } else if (p.kind === 'verify') {
        const r = phaseReport(p);
        const live = [...hostRuns.values()].filter((h) => h.onNew && h.stage);
        r.hosts = await mapLimit(live, config.parallel, async (h) => {
          const h0 = Date.now();
          const stage = config.stages.find((s) => s.name === h.stage) as StageConfig;
          const health = await runHealthChecks(
            ctx,
            h.host,
            [...stage.health, ...config.verify.health],
            stage.name,
          );
          for (const x of health) emit({ type: 'host-health', phase: p.name, host: h.host.name, health: x });
          const bad = health.filter((x) => !x.ok);
          const info = bad.length
            ? {
                class: 'health-failed' as const,
                message: `${h.host.name}: ${bad.map((b) => `${b.check}: ${b.lastError}`).join('; ')}`,
                phase: p.name,
                host: h.host.name,
              }
            : undefined;
          emit({
            type: 'host-end',
            phase: p.name,
            host: h.host.name,
            ok: !info,
            durationMs: Date.now() - h0,
            error: info,
            attempt: 1,
          });
          return {
            host: h.host.name,
            ok: !info,
            durationMs: Date.now() - h0,
            attempts: [],
            steps: [],
            health,
            error: info,
          };
        });
        const failed = r.hosts.filter((h) => !h.ok);
        if (failed.length) {
          const info: ErrorInfo = {
            class: 'health-failed',
            message: `verification failed on ${failed.map((f) => f.host).join(', ')}: ${failed[0].error?.message}`,
            phase: p.name,
          };
          endPhase(r, t0, info);
          if (config.verify.onFailure === 'rollback-all') {
            await rollback(
              live.map((h) => h.host.name),
              p.name,
              r,
            );
            r.status = 'rolled_back';
            throw new Stop('rolled_back', info);
          }
          throw new Stop('failed', info);
        }
        endPhase(r, t0);
      }
    }
  } catch (err) {
    if (err instanceof Stop) {
      status = err.status;
      error = err.info;
    } else {
      status = [...hostRuns.values()].some((h) => h.touched || h.onNew) ? 'failed' : 'aborted';
      error = errorInfo(err, { phase: lastPhase });
    }
    if (signal.aborted && error.class !== 'cancelled')
      error = { ...error, class: 'cancelled', message: `cancelled during ${lastPhase}: ${error.message}` };
  } finally {
    clearInterval(heartbeatTimer);
    if (signal.aborted) await pool.killAll().catch(() => undefined);
    // "Nothing changed" includes env files: an aborted run, or a host that does not end on the new release, gets
    // back the env file it had (a host rolled back has it back already).
    await mapLimit(
      [...hostRuns.values()].filter(
        (h) => h.envWritten && !h.rollback?.ok && (status === 'aborted' || !h.onNew),
      ),
      config.parallel,
      async (h) => {
        const ok = await restoreEnvFile(ctx, h.host).then(
          (res) => res?.ok !== false,
          () => false,
        );
        if (!ok)
          emit({
            type: 'log',
            level: 'warn',
            message: `${h.host.name}: restoring ${config.secrets?.file} failed; it holds this run's values while running ${h.before ?? 'nothing'}`,
          });
        else record('env-restored', h.host.name, config.secrets?.file);
      },
    );
    await Promise.all(
      [...hostRuns.values()]
        .filter((h) => h.locked)
        .map(async (h) => {
          if (await releaseLock(ctx, h.host).catch(() => false)) record('lock-released', h.host.name);
        }),
    );
  }

  if (rollbackFailed) {
    status = 'failed';
    const where = [...hostRuns.values()].filter((h) => h.rollback && !h.rollback.ok).map((h) => h.host.name);
    error = {
      ...(error as ErrorInfo),
      message: `ROLLBACK FAILED on ${where.join(', ')}; ${error?.message ?? ''}`,
    };
  }
  // After any rollback, read back what each host really runs rather than trusting our bookkeeping.
  const anyRollback = [...hostRuns.values()].some((h) => h.rollback);
  const finals = await Promise.all(
    [...hostRuns.values()].map(async (h) => {
      let after: string | null = h.onNew ? release.id : h.before;
      let unknown = false;
      if (anyRollback && h.rollback) {
        after = await readCurrent(ctx, h.host).catch(() => {
          unknown = true;
          return null;
        });
      }
      const state = unknown
        ? 'unknown'
        : after === release.id
          ? h.before === release.id
            ? 'unchanged'
            : 'new'
          : after === null
            ? 'none'
            : 'previous';
      return {
        host: h.host.name,
        stage: h.stage,
        before: h.before,
        after,
        state: state as Report['hosts'][number]['state'],
        rollback: h.rollback,
      };
    }),
  );
  await pool.closeAll();
  const durationSeconds = Math.round((Date.now() - started) / 100) / 10;
  emit({ type: 'run-end', status, durationSeconds });
  const report: Report = {
    schema: 1,
    project: config.project,
    status,
    phase: lastPhase,
    systemsDeployed: finals
      .filter((f) => f.after === release.id && f.stage && f.state !== 'unknown')
      .map((f) => f.host),
    durationSeconds,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date().toISOString(),
    release,
    run: opts.run ?? {},
    phasesRequested: opts.phases,
    error,
    rollbackFailed: rollbackFailed || undefined,
    audit,
    phases,
    hosts: finals,
  };
  return redactor.redactDeep(report);
}

async function preflightWithWait(
  ctx: RunContext,
  h: HostRun,
  phase: string,
): Promise<PreflightState & { lockWaitMs: number }> {
  const deadline = Date.now() + ctx.config.lock.waitMs;
  let waited = 0;
  for (;;) {
    try {
      return { ...(await preflight(ctx, h.host, phase)), lockWaitMs: waited };
    } catch (err) {
      if (
        !(err instanceof DeployError) ||
        err.errorClass !== 'lock-held' ||
        Date.now() >= deadline ||
        ctx.signal.aborted
      )
        throw err;
      ctx.emit({
        type: 'log',
        level: 'info',
        message: `${err.message}; waiting (up to ${Math.round((deadline - Date.now()) / 1000)}s more)`,
      });
      const pause = Math.min(5000, Math.max(0, deadline - Date.now()));
      await sleep(pause, ctx.signal);
      waited += pause;
    }
  }
}

function skipRemainingStages(plan: Plan, current: PlannedPhase, phases: PhaseReport[]): void {
  const idx = plan.phases.indexOf(current);
  for (const p of plan.phases.slice(idx + 1)) {
    if (p.kind !== 'stage') continue;
    phases.push({
      name: p.name,
      kind: 'stage',
      status: 'skipped',
      startedAt: new Date().toISOString(),
      durationMs: 0,
      hosts: [],
    });
    plan.phases.splice(plan.phases.indexOf(p), 1);
  }
}

/**
 * The seed's rules, derived from what actually happened: if some host still runs the new release the outcome is a
 * partial success; if hosts of stages that had succeeded were rolled back it is `rolled_back`; otherwise `failed`.
 */
function decideStatus(hostRuns: Map<string, HostRun>, failedStage: StageConfig): DeployStatus {
  const runs = [...hostRuns.values()];
  if (runs.some((h) => h.onNew && h.stage !== failedStage.name && !h.rollback)) return 'partial_success';
  const earlierRolledBack = runs.some((h) => h.rollback && h.stage !== failedStage.name);
  return earlierRolledBack ? 'rolled_back' : 'failed';
}

/** Deploys to one host with the stage's retry policy; health failures count as deploy failures of that attempt. */
async function deployHost(
  ctx: RunContext,
  h: HostRun,
  stage: StageConfig,
  random?: () => number,
): Promise<HostPhaseReport> {
  const t0 = Date.now();
  const attempts: AttemptReport[] = [];
  const report: HostPhaseReport = {
    host: h.host.name,
    ok: false,
    durationMs: 0,
    attempts,
    steps: [],
    health: [],
  };
  let delayBefore: number | undefined;
  if (h.startCurrent === ctx.release.id && !ctx.force) {
    // Already current (e.g. a re-run): deploying again would restart the stack for nothing. Check it is healthy.
    const health = await runHealthChecks(ctx, h.host, stage.health, stage.name);
    if (health.every((x) => x.ok)) {
      report.ok = true;
      report.health = health;
      report.detail = { unchanged: true };
      attempts.push({ attempt: 1, ok: true, durationMs: Date.now() - t0 });
      ctx.emit({
        type: 'log',
        level: 'info',
        message: `${h.host.name}: release ${ctx.release.id} is already current and healthy; not redeployed (use --force to redeploy)`,
      });
      report.durationMs = Date.now() - t0;
      return report;
    }
  }
  for (let attempt = 1; attempt <= stage.retry.attempts; attempt++) {
    const a0 = Date.now();
    let err: DeployError | undefined;
    try {
      const res = await deployRelease(ctx, h.host, stage.name, h.before, !h.releaseComplete);
      report.steps = res.steps;
      for (const s of res.steps)
        ctx.emit({ type: 'host-step', phase: stage.name, host: h.host.name, step: s });
      const switched = res.steps.some((s) => s.name === 'switch' && s.ok);
      if (switched) {
        h.touched = true;
        h.onNew = true;
        h.releaseComplete = true;
      }
      if (!res.ok) {
        const f = res.failed;
        throw new DeployError(
          'command-failed',
          `${f?.name} failed on ${h.host.name} (exit ${f?.exitCode ?? 'none'}): ${(f?.output ?? '').trim().split('\n').slice(-3).join(' | ')}`,
          { host: h.host.name },
        );
      }
      const health = await runHealthChecks(ctx, h.host, stage.health, stage.name);
      report.health = health;
      for (const x of health)
        ctx.emit({ type: 'host-health', phase: stage.name, host: h.host.name, health: x });
      const bad = health.filter((x) => !x.ok);
      if (bad.length) {
        throw new DeployError(
          'health-failed',
          `${h.host.name}: ${bad.map((b) => `${b.check}: ${b.lastError}`).join('; ')}`,
          { host: h.host.name },
        );
      }
    } catch (e) {
      err = toDeployError(e, 'command-failed').withContext({ host: h.host.name, phase: stage.name });
      // A dropped connection mid-deploy leaves the host's state unknown: treat it as touched so it is rolled back.
      if (err.errorClass === 'unreachable' || err.errorClass === 'timeout') h.touched = true;
    }
    const info = err ? ctx.errorInfo(err, { host: h.host.name, phase: stage.name }) : undefined;
    attempts.push({
      attempt,
      ok: !err,
      durationMs: Date.now() - a0,
      error: info,
      delayBeforeMs: delayBefore,
    });
    ctx.emit({
      type: 'host-end',
      phase: stage.name,
      host: h.host.name,
      ok: !err,
      durationMs: Date.now() - a0,
      error: info,
      attempt,
    });
    if (!err) {
      report.ok = true;
      break;
    }
    report.error = info;
    if (h.touched) {
      await appendReleaseLog(ctx, h.host, {
        event: 'deploy',
        stage: stage.name,
        previous: h.before,
        result: 'failed',
        attempt,
        error: info?.class,
      }).catch(() => undefined);
    }
    if (attempt >= stage.retry.attempts || !isRetryable(err, stage.retry.on) || ctx.signal.aborted) break;
    delayBefore = backoffDelay(stage.retry, attempt + 1, random);
    ctx.emit({
      type: 'retry',
      phase: stage.name,
      host: h.host.name,
      attempt: attempt + 1,
      delayMs: delayBefore,
      error: info as ErrorInfo,
    });
    await sleep(delayBefore, ctx.signal);
  }
  if (report.ok) report.error = undefined;
  report.durationMs = Date.now() - t0;
  return report;
}

export type { Plan };
