import { DeployError } from '../errors';
import { runHealthChecks } from '../health/run';
import type { PhaseReport, RollbackReport } from '../report/types';
import { mapLimit } from '../util/concurrency';
import { cleanupTimeout, record, type RunState, type TargetRun } from './run-state';

/** Kept from the cancellation budget for what comes after rollbacks: env files and locks. */
const RESERVE_FOR_LOCKS_MS = 1500;

/**
 * Returns targets to their rollback point: the infrastructure snapshot first where one is configured, then the
 * release, and a health check of the old release. Results go on the target run and into the phase report; a
 * failed rollback is recorded (in the report and on the target, for `status`), never thrown.
 */
export async function rollbackHosts(
  state: RunState,
  names: string[],
  phaseName: string,
  phase: PhaseReport,
): Promise<void> {
  const { ctx } = state;
  const targets = names
    .map((n) => state.runs.get(n))
    .filter((h): h is TargetRun => !!h && (h.touched || h.onNew));
  if (state.noRollback) return leaveInPlace(state, targets, phaseName, phase);
  await mapLimit(targets, ctx.config.parallel, async (h) => {
    const r = await rollbackOne(state, h, phaseName);
    h.rollback = r;
    if (r.ok) {
      h.onNew = h.before !== null && h.before === h.newVersion;
      h.touched = false;
    } else {
      state.rollbackFailed = true;
      if (!r.pending && !h.lockLost) await markForHuman(state, h, r);
    }
    record(
      state,
      'rollback',
      h.target.name,
      `${r.ok ? 'to' : 'FAILED, to'} ${h.before ?? '(none: stack stopped)'}`,
    );
    ctx.emit({ type: 'rollback', phase: phaseName, host: h.target.name, ok: r.ok, to: r.to, error: r.error });
    const hr = phase.hosts.find((x) => x.host === h.target.name);
    if (hr) hr.rollback = r;
    else
      phase.hosts.push({
        host: h.target.name,
        ok: r.ok,
        durationMs: r.durationMs,
        attempts: [],
        steps: [],
        health: [],
        rollback: r,
      });
  });
  markRolledBackStages(state, targets);
}

/**
 * rollback-on-failure: false. Nothing is rolled back; each target that would have been says so, loudly, in the
 * report and the log, with what it runs now.
 */
function leaveInPlace(state: RunState, targets: TargetRun[], phaseName: string, phase: PhaseReport): void {
  const { ctx } = state;
  for (const h of targets) {
    const r: RollbackReport = {
      ok: false,
      skipped: true,
      to: h.before,
      durationMs: 0,
      error: {
        class: 'precondition',
        message: `not rolled back (rollback-on-failure is false): ${h.target.name} is left on the failed release; roll back by hand to ${h.before ?? 'nothing'}`,
        host: h.target.name,
        phase: phaseName,
      },
    };
    h.rollback = r;
    record(
      state,
      'rollback',
      h.target.name,
      `NOT rolled back (rollback-on-failure: false); would return to ${h.before ?? '(none)'}`,
    );
    ctx.emit({ type: 'log', level: 'warn', message: `⚠ NOT ROLLED BACK: ${r.error?.message}` });
    const hr = phase.hosts.find((x) => x.host === h.target.name);
    if (hr) hr.rollback = r;
  }
}

/** A failed rollback leaves a record on the target that `status` shows until a later deploy or rollback. */
async function markForHuman(state: RunState, h: TargetRun, r: RollbackReport): Promise<void> {
  const { ctx } = state;
  await h.target
    .markNeedsAttention(
      {
        time: new Date().toISOString(),
        reason: 'rollback-failed',
        release: ctx.release.id,
        rollbackTo: h.before,
        error: r.error?.message,
        runId: ctx.run.id,
        runUrl: ctx.run.url,
      },
      { timeoutMs: cleanupTimeout(state, 15_000, RESERVE_FOR_LOCKS_MS) },
    )
    .then(
      () => record(state, 'needs-attention', h.target.name, r.error?.message),
      () => undefined,
    );
}

async function rollbackOne(state: RunState, h: TargetRun, phaseName: string): Promise<RollbackReport> {
  const { ctx } = state;
  const t0 = Date.now();
  const stage = h.stage ?? phaseName;
  const r: RollbackReport = { ok: false, to: h.before, durationMs: 0 };
  const name = h.target.name;
  try {
    if (h.lockLost)
      throw new DeployError(
        'lock-held',
        `not rolled back: the deploy lock on ${name} now belongs to another run or an operator, who decides what it runs`,
        { host: name },
      );
    if (h.noRollbackPoint)
      throw new DeployError(
        'precondition',
        `no rollback point is recorded on ${name} for release ${ctx.release.id} (it was deployed before this pipeline recorded one); roll back by deploying the release you want`,
        { host: name },
      );
    const cancelled = state.cancelDeadline !== undefined;
    const out = await h.target.rollback({
      stage,
      to: h.before,
      infraSnapshot: h.infraSnapshot,
      handOverWaitMs: cancelled ? cleanupTimeout(state, 60_000, RESERVE_FOR_LOCKS_MS) : undefined,
    });
    if (out.infraSnapshot) r.infraSnapshot = out.infraSnapshot;
    if (out.handedOver) {
      // Under cancellation the rollback runs on the target and releases the lock itself when it ends.
      h.lockHandedOver = true;
      r.durationMs = Date.now() - t0;
      if (out.ok) return { ...r, ok: true, unverified: true };
      const message = out.pending
        ? `rollback to ${h.before ?? '(none)'} is still running on the host after the run was cancelled (log: ${out.logFile}); it releases the deploy lock when it ends`
        : `rollback to ${h.before ?? '(none)'} failed on the host: ${(out.failed?.output ?? '').trim().slice(-300)}`;
      return {
        ...r,
        pending: out.pending,
        error: ctx.errorInfo(
          new DeployError(out.pending ? 'cancelled' : 'command-failed', message, { host: name }),
        ),
      };
    }
    if (!out.ok)
      throw new DeployError(
        'command-failed',
        `rollback step "${out.failed?.name}" failed: ${(out.failed?.output ?? '').trim().slice(-300)}`,
        { host: name },
      );
    const checks = ctx.config.stages.find((s) => s.name === h.stage)?.health ?? [];
    if (h.before && checks.length) {
      // A rollback is done when the old release answers, not when its stack was started.
      const bad = (await runHealthChecks(ctx, h.target.healthSubject(stage, h.before), checks)).filter(
        (x) => !x.ok,
      );
      // The run was cancelled while the old release was being checked: it runs again, unchecked, as a rollback
      // handed over to the host would.
      if (bad.length && ctx.signal.aborted) {
        r.durationMs = Date.now() - t0;
        return { ...r, ok: true, unverified: true };
      }
      if (bad.length)
        throw new DeployError(
          'health-failed',
          `after rollback to ${h.before}: ${bad.map((b) => `${b.check}: ${b.lastError}`).join('; ')}`,
          { host: name },
        );
    }
    r.ok = true;
  } catch (err) {
    r.error = ctx.errorInfo(err, { host: name, phase: phaseName });
  }
  r.durationMs = Date.now() - t0;
  return r;
}

/** A stage whose targets were all rolled back by a later failure did not stay deployed: its phase says so. */
function markRolledBackStages(state: RunState, rolledBack: TargetRun[]): void {
  const back = new Set(rolledBack.filter((h) => h.rollback?.ok).map((h) => h.target.name));
  for (const p of state.phases) {
    if (p.kind !== 'stage' || p.status !== 'ok' || p.hosts.length === 0) continue;
    if (p.hosts.every((x) => back.has(x.host))) p.status = 'rolled_back';
  }
}
