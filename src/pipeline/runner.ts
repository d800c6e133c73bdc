import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Config } from '../config/types';
import type { UploadFile } from '../remote/sftp';
import type { AuditRecord, DeployStatus, ErrorInfo, HostFinalState, Report } from '../report/types';
import { errorInfoWith, type RunContext, type RunInfo } from '../run/context';
import type { DeployEvent, EventListener } from '../run/events';
import { releaseIdFor } from '../run/release';
import type { Redactor } from '../secrets/redact';
import { createTargets } from '../targets';
import { cleanUp, finalStates } from './finish';
import { Heartbeats, heartbeatInterval, idleBeatConnections } from './heartbeats';
import type { TagPublisher } from '../release/tag';
import { checkpoint, openWindow } from './gates';
import { afterRelease, beforeRelease, type ReleaseStepsRun } from './release-steps';
import { checkTestsRecords } from './tests-record';
import { prepareRun, runPreflight } from './phases/preflight';
import { runRollout } from './phases/rollout';
import { runSecrets } from './phases/secrets';
import { runSnapshot } from './phases/snapshot';
import { runStage, skipRemainingStages } from './phases/stage';
import { runVerify } from './phases/verify';
import { buildPlan, type Plan } from '../plan/plan';
import { Stop, type RunState } from './run-state';

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
  /** The operator confirmed a run above checkpoint.above targets (`--yes`, the approved job's input). */
  confirmed?: boolean;
  /** Deploy outside the config's window (audited). */
  ignoreWindow?: boolean;
  /** Outside the window, wait for it to open instead of refusing. */
  waitForWindow?: boolean;
  /** false: failures leave targets as they are (for debugging), and the report says which. */
  rollbackOnFailure?: boolean;
  /** Skip the stages' tests when this commit already passed them on the same targets (refused otherwise). */
  skipTests?: boolean | 'force';
  /** The release's version for its tag (`--release-version`, the action's release-version input). */
  releaseVersion?: string;
  /** Publishes the release tag (the action's GitHub API publisher); default: git on the runner. */
  tagPublisher?: TagPublisher;
}

/**
 * How long a cancelled run may still take: the runner sends SIGINT, then SIGTERM 7.5 s later, then kills. Within
 * this budget remote commands are killed, touched hosts rolled back without waiting for health, env files
 * restored and locks released.
 */
export const CANCEL_BUDGET_MS = 6000;

/**
 * Executes a plan: pre-flight → secrets → snapshot → stages (deploy, health, tests; retry) → verify, applying the
 * failure rules, and always returns a report; it never throws for a failed deploy.
 */
export async function runDeploy(opts: RunOptions): Promise<Report> {
  const started = Date.now();
  const { config, redactor } = opts;
  const controller = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
  // Every command in flight listens on the run's signal (up to max_channels per target worked on at once): far
  // past Node's leak warning of 10 at a fleet's parallel, and not a leak.
  const widest = Math.max(config.parallel, ...config.stages.map((s) => s.parallel));
  setMaxListeners(widest * 8 + 20, signal);
  const runToken = opts.runToken ?? randomBytes(6).toString('hex');
  const release = { id: releaseIdFor(opts.commit), commit: opts.commit, ref: opts.ref };
  const emit = (e: DeployEvent) => {
    try {
      void opts.onEvent?.(redactor.redactDeep(e));
    } catch {
      /* a listener must never break a deploy */
    }
  };
  const audit: AuditRecord[] = [];
  const ctx: RunContext = {
    config,
    release,
    run: opts.run ?? {},
    runToken,
    redactor,
    signal,
    env: opts.env ?? process.env,
    files: [],
    emit,
    audit: (action, host, detail) =>
      void audit.push({ time: new Date().toISOString(), action, host, detail }),
    errorInfo: errorInfoWith(redactor),
    force: opts.force,
  };
  const state: RunState = {
    ctx,
    targets: createTargets(ctx, {
      fallbackKey: opts.fallbackKey,
      fallbackKnownHosts: opts.fallbackKnownHosts,
    }),
    runs: new Map(),
    phases: [],
    audit,
    lastPhase: 'preflight',
    rollbackFailed: false,
    random: opts.random,
    waves: [],
    noRollback: opts.rollbackOnFailure === false,
  };
  const onAbort = () => (state.cancelDeadline ??= Date.now() + CANCEL_BUDGET_MS);
  if (signal.aborted) onAbort();
  signal.addEventListener('abort', onAbort, { once: true });
  let lostLock: string | undefined;
  const heartbeats = new Heartbeats(
    heartbeatInterval(config.lock.staleAfterMs),
    (host) => {
      lostLock ??= host;
      // Not ours any more: the cleanup must not try to release it, nor warn that it could not.
      const h = state.runs.get(host);
      if (h) h.lockLost = true;
      controller.abort();
    },
    idleBeatConnections(config.stages.map((s) => s.parallel)),
  );

  let status: DeployStatus = 'success';
  let error: ErrorInfo | undefined;
  let releaseSteps: ReleaseStepsRun = {};
  try {
    const plan = buildPlan(config, opts.phases, opts.targets);
    emit({
      type: 'run-start',
      project: config.project,
      release: release.id,
      commit: release.commit,
      phases: plan.phases.map((p) => p.name),
    });
    addTargets(state, plan);
    await openWindow(state, { ignore: opts.ignoreWindow, wait: opts.waitForWindow });
    checkpoint(state, plan, opts.confirmed);
    releaseSteps = await beforeRelease(state, plan, {
      version: opts.releaseVersion,
      publisher: opts.tagPublisher,
    }).catch((err: unknown) => {
      throw new Stop('aborted', ctx.errorInfo(err, { phase: 'preflight' }));
    });
    const { envFiles } = prepareRun(state, plan, { files: opts.files });
    let degraded = false;
    for (const p of plan.phases) {
      if (signal.aborted) {
        // Between phases: what is deployed stays (it passed its checks); the report says where each host is.
        const changed = [...state.runs.values()].some((h) => h.touched);
        throw new Stop(changed ? 'failed' : 'aborted', {
          class: 'cancelled',
          message: 'the run was cancelled',
          phase: p.name,
        });
      }
      if (p.kind === 'preflight') {
        await runPreflight(state, p, plan, heartbeats);
        if (opts.skipTests) state.skippedTests = await checkTestsRecords(state, plan, opts.skipTests);
      } else if (p.kind === 'secrets' && config.secrets)
        await runSecrets(state, p, config.secrets.file, envFiles);
      else if (p.kind === 'snapshot') await runSnapshot(state, p);
      else if (p.kind === 'stage' && p.stage && !degraded) {
        const outcome = p.stage.rollout
          ? await runRollout(state, p, p.stage, p.stage.rollout, {
              heartbeats,
              envFiles,
              ignoreWindow: opts.ignoreWindow,
              releaseEarly:
                plan.phases.filter((x) => x.kind === 'stage').pop() === p &&
                !(plan.phases.some((x) => x.kind === 'verify') && config.verify.health.length > 0),
            })
          : await runStage(state, p, p.stage);
        if (outcome === 'continue-degraded') {
          degraded = true;
          const failedPhase = state.phases[state.phases.length - 1];
          status = 'partial_success';
          error = failedPhase.error;
          skipRemainingStages(plan, p, state.phases);
        }
      } else if (p.kind === 'verify') await runVerify(state, p);
    }
    // Targets a fleet stage lost within its budget (or left for the next window) make the run a partial success.
    if (state.partial && status === 'success') {
      status = 'partial_success';
      error = state.partial;
    }
  } catch (err) {
    if (err instanceof Stop) {
      status = err.status;
      error = err.info;
    } else {
      status = [...state.runs.values()].some((h) => h.touched || h.onNew) ? 'failed' : 'aborted';
      error = ctx.errorInfo(err, { phase: state.lastPhase });
    }
  } finally {
    await heartbeats.stopAll();
    if (signal.aborted) await state.targets.killAll().catch(() => undefined);
  }
  // A lost lock aborts like a cancellation, so its phase failed as `cancelled`: say why instead.
  if (signal.aborted && (lostLock || error?.class !== 'cancelled')) {
    const why = lostLock
      ? `the deploy lock on ${lostLock} was taken away (released by an operator or taken over as stale)`
      : `cancelled during ${state.lastPhase}`;
    error = {
      ...(error ?? { phase: state.lastPhase }),
      class: lostLock ? 'lock-held' : 'cancelled',
      message: `${why}${error ? `: ${error.message}` : ''}`,
    };
    if (status === 'success' || status === 'partial_success')
      status = [...state.runs.values()].some((h) => h.touched) ? 'failed' : 'aborted';
  }
  // Before the locks go: they keep two runs from tagging and writing the changelog at once.
  const releaseReport = await afterRelease(state, releaseSteps, status);
  await cleanUp(state, status);

  if (state.rollbackFailed) {
    status = 'failed';
    const bad = [...state.runs.values()].filter((h) => h.rollback && !h.rollback.ok);
    const failedOn = bad.filter((h) => !h.rollback?.pending).map((h) => h.target.name);
    const runningOn = bad.filter((h) => h.rollback?.pending).map((h) => h.target.name);
    const what = [
      failedOn.length ? `ROLLBACK FAILED on ${failedOn.join(', ')}` : '',
      runningOn.length ? `ROLLBACK STILL RUNNING on ${runningOn.join(', ')} (handed over to the host)` : '',
    ].filter(Boolean);
    error = { ...(error as ErrorInfo), message: `${what.join('; ')}; ${error?.message ?? ''}` };
  }
  const finals = await finalStates(state);
  await state.targets.closeAll();
  const durationSeconds = Math.round((Date.now() - started) / 100) / 10;
  emit({ type: 'run-end', status, durationSeconds });
  const report: Report = {
    schema: 1,
    project: config.project,
    status,
    phase: state.lastPhase,
    systemsDeployed: finals
      .filter((f) => (f.state === 'new' || f.state === 'unchanged') && f.stage)
      .map((f) => f.host),
    durationSeconds,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date().toISOString(),
    release,
    run: opts.run ?? {},
    phasesRequested: opts.phases,
    error,
    rollbackFailed: state.rollbackFailed || undefined,
    audit: state.audit,
    phases: state.phases,
    hosts: finals,
    waves: state.waves.length ? state.waves : undefined,
    escalation: state.escalation,
    left: state.left,
    needsAttention: needsAttention(state, finals),
    releaseSteps: releaseReport,
    notRolledBack: notRolledBack(finals),
  };
  return redactor.redactDeep(report);
}

function notRolledBack(finals: HostFinalState[]): string[] | undefined {
  const names = finals.filter((f) => f.rollback?.skipped).map((f) => f.host);
  return names.length ? names : undefined;
}

/**
 * Targets a human must look at: a rollback that failed or is still running, or a target this run changed (or may
 * have) whose state nobody could read back. A target the run never reached is unknown but untouched: not here.
 */
function needsAttention(state: RunState, finals: HostFinalState[]): string[] | undefined {
  const names = finals
    .filter((f) => {
      if (f.rollback && !f.rollback.ok && !f.rollback.skipped) return true;
      return f.state === 'unknown' && !!state.runs.get(f.host)?.touched;
    })
    .map((f) => f.host);
  return names.length ? names : undefined;
}

function addTargets(state: RunState, plan: Plan): void {
  const { config } = state.ctx;
  const stageOf = new Map<string, string>();
  for (const s of config.stages) for (const h of s.targets) stageOf.set(h, s.name);
  for (const h of plan.hosts) {
    state.runs.set(h, {
      target: state.targets.get(h),
      stage: stageOf.get(h),
      before: null,
      startCurrent: null,
      startedOnNew: false,
      attempted: false,
      locked: false,
      prepared: false,
      touched: false,
      envWritten: false,
      onNew: false,
    });
  }
}

export type { Plan };
