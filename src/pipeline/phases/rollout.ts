import type { RolloutSettings, StageConfig } from '../../config/types';
import { budgetExceeded, splitWaves } from '../../plan/waves';
import { inWindow } from '../../plan/window';
import type {
  ErrorInfo,
  EscalationReport,
  HostPhaseReport,
  PhaseReport,
  WaveReport,
} from '../../report/types';
import { mapLimit } from '../../util/concurrency';
import { sleep } from '../../util/duration';
import { requireHealthy } from '../health-gate';
import type { Heartbeats } from '../heartbeats';
import { endPhase, hostResult, startPhase } from '../phase-report';
import type { PlannedPhase } from '../../plan/plan';
import { rollbackHosts } from '../rollback';
import { record, Stop, targetRun, type RunState, type TargetRun } from '../run-state';
import { preflightOne } from './preflight';
import {
  deployTarget,
  gate,
  recordDeploy,
  rollbackAllScope,
  settle,
  statusAfterRollbackAll,
  type StageOutcome,
} from './stage';

/** How often a wave's progress line is refreshed. */
const PROGRESS_EVERY_MS = 1000;
/** Failing targets named in an escalation. */
const FIRST_FAILING = 10;

export interface RolloutInput {
  heartbeats: Heartbeats;
  envFiles: Map<string, string>;
  /** Ignore the deploy window (audited). */
  ignoreWindow?: boolean;
  /**
   * Nothing after this stage can roll its targets back (it is the run's last stage and verify has no checks for
   * it): a target gives its lock back as soon as its part is done, instead of a connection to each at the end.
   */
  releaseEarly: boolean;
}

interface Tally {
  failed: number;
  done: number;
  classes: Map<string, number>;
  failing: string[];
}

/**
 * A fleet stage: its targets roll out in waves, each target going through pre-flight, secrets, snapshot, deploy
 * and health on its own as soon as it has a slot, its connection given back when its part is done. A target that
 * fails is rolled back on its own and counted against the failure budget; the first wave is the canary, and any
 * failure there stops the rollout. When the budget is passed, no further target starts, the configured policy
 * rolls back what it names, and an escalation goes out. A wave that would start after the deploy window closed
 * is not started: its targets are left for the next window.
 */
export async function runRollout(
  state: RunState,
  p: PlannedPhase,
  stage: StageConfig,
  rollout: RolloutSettings,
  input: RolloutInput,
): Promise<StageOutcome> {
  const { ctx } = state;
  const t0 = Date.now();
  const r = startPhase(state, p);
  const waves = splitWaves(stage.targets, rollout);
  const tally: Tally = { failed: 0, done: 0, classes: new Map(), failing: [] };
  const reports: WaveReport[] = [];
  let stopped: { reason: string; wave: number; scope: 'wave' | 'overall' } | undefined;
  let leftReason: string | undefined;
  let wi = 0;
  for (; wi < waves.length && !stopped; wi++) {
    if (ctx.signal.aborted) break;
    if (wi > 0 && rollout.pauseMs > 0) await sleep(rollout.pauseMs, ctx.signal);
    if (ctx.signal.aborted) break;
    // Checked when the wave would start, after the pause: a pause may well outlast the window.
    const window = ctx.config.window;
    if (window && !input.ignoreWindow && !inWindow(window, new Date())) {
      leftReason = `the deploy window (${window.text}) closed before wave ${wi + 1} of ${waves.length}`;
      break;
    }
    const wave = waves[wi];
    const w = await runWave(state, stage, rollout, wave, wi, waves.length, tally, input, r);
    reports.push(w.report);
    state.waves.push(w.report);
    if (w.stopped) stopped = { reason: w.stopped, wave: wi + 1, scope: w.scope ?? 'wave' };
    else if (rollout.soakMs > 0 && !ctx.signal.aborted) {
      const soaked = await soak(state, stage, rollout, w.report, wi === 0 && waves.length > 1, r, tally);
      if (soaked) stopped = { reason: soaked.reason, wave: wi + 1, scope: soaked.scope };
    }
  }
  const untouched = waves.slice(wi).flat();
  const notStartedInWaves = reports.flatMap((w) =>
    w.targets.filter((t) => !r.hosts.some((h) => h.host === t)),
  );
  const left = [...notStartedInWaves, ...untouched];
  if (left.length && (stopped || leftReason || ctx.signal.aborted))
    state.left = {
      targets: [...(state.left?.targets ?? []), ...left],
      reason: stopped
        ? `the rollout of ${stage.name} stopped at wave ${stopped.wave}: ${stopped.reason}`
        : (leftReason ?? 'the run was cancelled'),
    };

  if (ctx.signal.aborted) {
    const info: ErrorInfo = {
      class: 'cancelled',
      message: `cancelled during ${stage.name}`,
      phase: stage.name,
    };
    endPhase(state, r, t0, info);
    throw new Stop([...state.runs.values()].some((h) => h.touched) ? 'failed' : 'aborted', info);
  }

  if (stopped) {
    const info: ErrorInfo = {
      class: mostCommon(tally.classes) ?? 'health-failed',
      message: `failure budget of ${stage.name} passed in wave ${stopped.wave}: ${stopped.reason}`,
      phase: stage.name,
    };
    const escalation: EscalationReport = {
      stage: stage.name,
      wave: stopped.wave,
      reason: stopped.reason,
      rate: tally.done ? tally.failed / tally.done : 0,
      classes: Object.fromEntries(tally.classes),
      firstFailing: tally.failing.slice(0, FIRST_FAILING),
    };
    state.escalation = escalation;
    const last = reports[reports.length - 1];
    if (last) {
      last.escalation = escalation;
      last.left = left;
    }
    ctx.emit({ type: 'escalation', escalation });
    endPhase(state, r, t0, info);
    const policy = rollout.onBudgetExceeded;
    const live = (names: string[]) =>
      names.filter((n) => state.runs.get(n)?.onNew && !state.runs.get(n)?.rollback);
    if (policy === 'rollback-wave') await rollbackHosts(state, live(waves[stopped.wave - 1]), stage.name, r);
    if (policy === 'rollback-all') {
      await rollbackHosts(state, live(rollbackAllScope(state, stage)), stage.name, r);
      throw new Stop(statusAfterRollbackAll(state, stage), info);
    }
    // The rollout stopped short of its stage: whatever it left live, the run did not do what it was asked to.
    throw new Stop('failed', info);
  }

  // The stage's tests gate what comes next, as for any stage.
  const failure = stage.tests ? await gate(state, r, stage) : undefined;
  if (failure) {
    endPhase(state, r, t0, failure);
    const scope = stage.onFailure === 'rollback-all' ? rollbackAllScope(state, stage) : stage.targets;
    await rollbackHosts(state, scope, stage.name, r);
    r.status = state.noRollback ? 'failed' : 'rolled_back';
    throw new Stop(
      stage.onFailure === 'rollback-all' ? statusAfterRollbackAll(state, stage) : 'failed',
      failure,
    );
  }
  const failedHosts = r.hosts.filter((h) => !h.ok);
  if (failedHosts.length) {
    // Within the budget: the stage is live on the rest; the failed targets were rolled back one by one.
    const info: ErrorInfo = {
      class: mostCommon(tally.classes) ?? 'health-failed',
      message: `${failedHosts.length} of ${stage.targets.length} targets of ${stage.name} failed (within the failure budget): ${failedHosts
        .slice(0, 5)
        .map((h) => h.host)
        .join(', ')}${failedHosts.length > 5 ? ', ...' : ''}`,
      phase: stage.name,
    };
    endPhase(state, r, t0);
    r.error = info;
    state.partial ??= info;
  } else endPhase(state, r, t0);
  if (left.length && leftReason)
    state.partial ??= { class: 'precondition', message: leftReason, phase: stage.name };
  return 'deployed';
}

interface WaveOutcome {
  report: WaveReport;
  stopped?: string;
  scope?: 'wave' | 'overall';
}

async function runWave(
  state: RunState,
  stage: StageConfig,
  rollout: RolloutSettings,
  targets: string[],
  index: number,
  count: number,
  tally: Tally,
  input: RolloutInput,
  r: PhaseReport,
): Promise<WaveOutcome> {
  const { ctx } = state;
  const started = Date.now();
  const report: WaveReport = {
    stage: stage.name,
    index: index + 1,
    targets,
    ok: 0,
    failed: 0,
    notStarted: 0,
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    budget: {
      maxFail: rollout.maxFail,
      maxFailPercentage: rollout.maxFailPercentage,
      failRate: 0,
      exceeded: false,
      policy: rollout.onBudgetExceeded,
    },
  };
  ctx.emit({ type: 'wave-start', phase: stage.name, wave: index + 1, waves: count, targets: targets.length });
  let stopped: string | undefined;
  let scope: 'wave' | 'overall' | undefined;
  const canary = index === 0 && count > 1;
  let running = 0;
  let next = 0;
  const progress = () => {
    const done = report.ok + report.failed;
    const minutes = (Date.now() - started) / 60_000;
    const perMinute = minutes > 0 ? done / minutes : 0;
    ctx.emit({
      type: 'wave-progress',
      phase: stage.name,
      wave: index + 1,
      done,
      failed: report.failed,
      running,
      total: targets.length,
      perMinute: Math.round(perMinute * 10) / 10,
      etaSeconds: perMinute > 0 ? Math.round(((targets.length - done) / perMinute) * 60) : undefined,
    });
  };
  const ticker = setInterval(progress, PROGRESS_EVERY_MS);
  ticker.unref();
  try {
    await Promise.all(
      Array.from({ length: Math.min(stage.parallel, targets.length) }, async () => {
        while (next < targets.length && !stopped && !ctx.signal.aborted) {
          const name = targets[next++];
          running++;
          const hr = await fleetTarget(state, stage, rollout, targetRun(state, name), index + 1, input);
          running--;
          r.hosts.push(hr);
          tally.done++;
          if (hr.ok) report.ok++;
          else {
            report.failed++;
            tally.failed++;
            const cls = hr.error?.class ?? 'internal';
            tally.classes.set(cls, (tally.classes.get(cls) ?? 0) + 1);
            if (tally.failing.length < FIRST_FAILING) tally.failing.push(name);
          }
          if (!stopped) {
            const verdict = budgetExceeded(
              {
                waveFailed: report.failed,
                waveSize: targets.length,
                failed: tally.failed,
                total: stage.targets.length,
                canary,
              },
              rollout,
            );
            stopped = verdict?.reason;
            scope = verdict?.scope;
          }
        }
      }),
    );
  } finally {
    clearInterval(ticker);
  }
  progress();
  report.notStarted = targets.length - report.ok - report.failed;
  report.durationMs = Date.now() - started;
  report.budget = {
    ...report.budget,
    failRate: targets.length ? report.failed / targets.length : 0,
    exceeded: !!stopped,
    decision: stopped,
    scope,
  };
  ctx.emit({
    type: 'wave-end',
    phase: stage.name,
    wave: index + 1,
    ok: report.ok,
    failed: report.failed,
    notStarted: report.notStarted,
    durationMs: report.durationMs,
    stopped,
  });
  return { report, stopped, scope };
}

/**
 * One target's whole part of the stage: pre-flight and its lock, env file, rollback point, deploy with the stage's
 * retry and health checks, then (deployed) its release log and pruning or (failed) its own rollback. Its
 * connection is given back at the end, so a fleet holds only as many as it works on at once.
 */
async function fleetTarget(
  state: RunState,
  stage: StageConfig,
  rollout: RolloutSettings,
  h: TargetRun,
  wave: number,
  input: RolloutInput,
): Promise<HostPhaseReport> {
  const { ctx } = state;
  const name = h.target.name;
  const t0 = Date.now();
  const steps: HostPhaseReport['steps'] = [];
  try {
    if (!h.locked) {
      const pre = await preflightOne(state, stage.name, name, 0, input.heartbeats);
      steps.push(...pre.steps);
      if (!pre.ok) return withWave(pre, wave);
    }
    const content = input.envFiles.get(name);
    if (ctx.config.secrets && h.target.writeSecrets && content !== undefined) {
      const sec = await h.target.writeSecrets(ctx.config.secrets.file, content);
      if (sec.state === 'written') h.envWritten = true;
      steps.push(...(sec.steps?.steps ?? []));
    }
    const snap = await h.target.snapshot(h.onNew ? undefined : h.before, { infra: !h.onNew });
    steps.push(...(snap.steps?.steps ?? []));
    if (snap.point) h.before = snap.point.previous;
    else if (h.onNew) h.noRollbackPoint = true;
    h.infraSnapshot = snap.point?.infraSnapshot;
    const hr = await deployTarget(state, h, stage);
    hr.steps = [...steps, ...hr.steps];
    recordDeploy(state, hr);
    if (hr.ok) {
      await settle(h, stage, { hosts: [hr] } as PhaseReport);
      h.settled = true;
    } else if (h.touched || h.onNew) {
      const phase = { hosts: [hr] } as PhaseReport;
      await rollbackHosts(state, [name], stage.name, phase);
    }
    return withWave(hr, wave);
  } catch (err) {
    const hr = hostResult(state, stage.name, name, t0, { ok: false, steps }, err);
    if (h.touched || h.onNew) await rollbackHosts(state, [name], stage.name, { hosts: [hr] } as PhaseReport);
    return withWave(hr, wave);
  } finally {
    // Nothing later in the stage needs this target's lock unless the budget policy may roll back targets that
    // succeeded, or a soak checks the wave again and may roll it back: then it is kept until the run ends.
    if (
      h.locked &&
      input.releaseEarly &&
      rollout.onBudgetExceeded === 'rollback-failed' &&
      rollout.soakMs === 0 &&
      !h.rollback?.pending
    ) {
      input.heartbeats.stop(name);
      if (await h.target.releaseLock().catch(() => false)) {
        h.lockReleased = true;
        record(state, 'lock-released', name);
      }
    }
    if (!h.lockReleased) h.idle = true;
    await h.target.close().catch(() => undefined);
  }
}

function withWave(hr: HostPhaseReport, wave: number): HostPhaseReport {
  hr.detail = { ...hr.detail, wave };
  return hr;
}

/**
 * After a wave, wait the soak time and check its live targets again: a release that degrades after a while
 * (memory, a leak, a slow dependency) is caught before the next wave. Failures count against the budget as
 * failures of the wave (the canary's budget stays zero), the wave's report says so, and the failed targets are
 * rolled back. The checks run as wide as the stage, each target's connection given back when its check is done.
 */
async function soak(
  state: RunState,
  stage: StageConfig,
  rollout: RolloutSettings,
  wave: WaveReport,
  canary: boolean,
  r: PhaseReport,
  tally: Tally,
): Promise<{ reason: string; scope: 'wave' | 'overall' } | undefined> {
  const { ctx } = state;
  await sleep(rollout.soakMs, ctx.signal);
  if (ctx.signal.aborted) return undefined;
  const live = wave.targets.map((n) => targetRun(state, n)).filter((h) => h.onNew && !h.rollback);
  let failed = 0;
  await mapLimit(live, stage.parallel, async (h) => {
    try {
      await requireHealthy(ctx, h.target.healthSubject(stage.name), stage.health, `${stage.name} (soak)`);
    } catch (err) {
      failed++;
      tally.failed++;
      wave.ok--;
      wave.failed++;
      const info = ctx.errorInfo(err, { host: h.target.name, phase: stage.name });
      tally.classes.set(info.class, (tally.classes.get(info.class) ?? 0) + 1);
      if (tally.failing.length < FIRST_FAILING) tally.failing.push(h.target.name);
      const hr = r.hosts.find((x) => x.host === h.target.name);
      if (hr) {
        hr.ok = false;
        hr.error = info;
      }
      await rollbackHosts(state, [h.target.name], stage.name, r);
    } finally {
      await h.target.close().catch(() => undefined);
    }
  });
  if (failed === 0) return undefined;
  record(state, 'rollback', stage.name, `${failed} target(s) failed the soak after wave ${wave.index}`);
  const budget = wave.budget ?? { failRate: 0, exceeded: false };
  budget.failRate = wave.targets.length ? wave.failed / wave.targets.length : 0;
  const why = budgetExceeded(
    {
      waveFailed: wave.failed,
      waveSize: wave.targets.length,
      failed: tally.failed,
      total: stage.targets.length,
      canary,
    },
    rollout,
  );
  if (!why) return undefined;
  const reason = `the soak after wave ${wave.index}: ${why.reason}`;
  const scope = why.scope;
  wave.budget = { ...budget, exceeded: true, decision: reason, scope };
  return { reason, scope };
}

function mostCommon(m: Map<string, number>): ErrorInfo['class'] | undefined {
  let best: [string, number] | undefined;
  for (const e of m) if (!best || e[1] > best[1]) best = e;
  return best?.[0] as ErrorInfo['class'] | undefined;
}
