import { handOverRollback, rollbackRelease } from '../deploy/host-ops';
import { DeployError } from '../errors';
import { runHealthChecks } from '../health/run';
import { mapLimit } from '../util/concurrency';
import type { PhaseReport, RollbackReport } from '../report/types';
import { auditSnapshotActions } from '../snapshot/audit';
import { SnapshotActionError, snapshotProvider } from '../snapshot/provider';
import { sleep } from '../util/duration';
import type { RunContext } from '../run/context';
import { cleanupTimeout, record, type HostRun, type RunState } from './run-state';

/** How long a host may take to answer SSH again after its VM was rolled back (and booted). */
const VM_BACK_TIMEOUT_MS = 180_000;
/** Kept from the cancellation budget for what comes after rollbacks: env files and locks. */
const RESERVE_FOR_LOCKS_MS = 1500;

/**
 * Returns hosts to their rollback point: the infrastructure snapshot first where one is configured (it resets
 * the disk, so anything written before it would be undone), then the release: env file, `current`, the stack, and
 * a health check of the old release. Results go on the host run and into the phase report; a failed rollback is
 * recorded, never thrown.
 */
export async function rollbackHosts(
  state: RunState,
  names: string[],
  phaseName: string,
  phase: PhaseReport,
): Promise<void> {
  const { ctx } = state;
  const targets = names
    .map((n) => state.hosts.get(n))
    .filter((h): h is HostRun => !!h && (h.touched || h.onNew));
  await mapLimit(targets, ctx.config.parallel, async (h) => {
    const r = await rollbackOne(state, h, phaseName);
    h.rollback = r;
    if (r.ok) {
      h.onNew = h.before === ctx.release.id;
      h.touched = false;
    } else state.rollbackFailed = true;
    record(
      state,
      'rollback',
      h.host.name,
      `${r.ok ? 'to' : 'FAILED, to'} ${h.before ?? '(none: stack stopped)'}`,
    );
    ctx.emit({ type: 'rollback', phase: phaseName, host: h.host.name, ok: r.ok, to: r.to, error: r.error });
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
  markRolledBackStages(state, targets);
}

async function rollbackOne(state: RunState, h: HostRun, phaseName: string): Promise<RollbackReport> {
  const { ctx } = state;
  const t0 = Date.now();
  const stage = h.stage ?? phaseName;
  const r: RollbackReport = { ok: false, to: h.before, durationMs: 0 };
  try {
    if (h.lockLost)
      throw new DeployError(
        'lock-held',
        `not rolled back: the deploy lock on ${h.host.name} now belongs to another run or an operator, who decides what it runs`,
        { host: h.host.name },
      );
    if (h.noRollbackPoint)
      throw new DeployError(
        'precondition',
        `no rollback point is recorded on ${h.host.name} for release ${ctx.release.id} (it was deployed before this pipeline recorded one); roll back by deploying the release you want`,
        { host: h.host.name },
      );
    const snap = h.host.snapshot;
    if (snap?.rollbackOnFailure && h.infraSnapshot && state.cancelDeadline === undefined) {
      const back = await snapshotProvider(ctx, h.host, snap).rollback(h.infraSnapshot);
      r.infraSnapshot = h.infraSnapshot;
      if (snap.provider === 'proxmox') await waitForHost(ctx, h.host.name, VM_BACK_TIMEOUT_MS);
      // Written once the guest is back: the VM rollback rewound its disk, audit log included.
      record(state, 'rollback', h.host.name, back.detail);
      await auditSnapshotActions(ctx, h.host, [back]).catch(() => undefined);
    }
    if (state.cancelDeadline !== undefined) return await handOver(state, h, stage, r, t0);
    const res = await rollbackRelease(ctx, h.host, stage, h.before, {
      timeoutMs: h.host.deploy.timeoutMs + 60_000,
    });
    if (!res.ok)
      throw new DeployError(
        'command-failed',
        `rollback step "${res.failed?.name}" failed: ${(res.failed?.output ?? '').trim().slice(-300)}`,
        { host: h.host.name },
      );
    const checks = ctx.config.stages.find((s) => s.name === h.stage)?.health ?? [];
    if (h.before && checks.length) {
      // A rollback is done when the old release answers, not when its containers were started.
      const oldCtx: RunContext = { ...ctx, release: { ...ctx.release, id: h.before } };
      const bad = (await runHealthChecks(oldCtx, h.host, checks, stage)).filter((x) => !x.ok);
      if (bad.length)
        throw new DeployError(
          'health-failed',
          `after rollback to ${h.before}: ${bad.map((b) => `${b.check}: ${b.lastError}`).join('; ')}`,
          { host: h.host.name },
        );
    }
    r.ok = true;
  } catch (err) {
    if (err instanceof SnapshotActionError) {
      for (const a of err.actions) record(state, 'rollback', h.host.name, a.detail);
      await auditSnapshotActions(ctx, h.host, err.actions).catch(() => undefined);
    }
    r.error = ctx.errorInfo(err, { host: h.host.name, phase: phaseName });
  }
  r.durationMs = Date.now() - t0;
  return r;
}

/**
 * Under cancellation the rollback runs detached on the host and releases the lock itself when it ends, so the
 * runner's kill cannot leave a stack half started. Done within the budget: its result. Not done: the report says
 * it is still running there, and where its log is.
 */
async function handOver(
  state: RunState,
  h: HostRun,
  stage: string,
  r: RollbackReport,
  t0: number,
): Promise<RollbackReport> {
  const { ctx } = state;
  const waitMs = cleanupTimeout(state, 60_000, RESERVE_FOR_LOCKS_MS);
  const res = await handOverRollback(ctx, h.host, stage, h.before, waitMs);
  h.lockHandedOver = true;
  r.durationMs = Date.now() - t0;
  if (res.finished && res.ok) return { ...r, ok: true, unverified: true };
  const message = res.finished
    ? `rollback to ${h.before ?? '(none)'} failed on the host: ${res.output.trim().slice(-300)}`
    : `rollback to ${h.before ?? '(none)'} is still running on the host after the run was cancelled (log: ${res.logFile}); it releases the deploy lock when it ends`;
  return {
    ...r,
    ok: false,
    pending: !res.finished || undefined,
    error: ctx.errorInfo(
      new DeployError(res.finished ? 'command-failed' : 'cancelled', message, { host: h.host.name }),
    ),
  };
}

/** After a VM rollback the host reboots: wait until SSH answers again, on a fresh connection. */
async function waitForHost(ctx: RunContext, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const conn = await ctx.pool.get(name);
      const res = await conn.exec('true', { timeoutMs: 10_000 });
      if (res.code === 0) return;
    } catch (err) {
      last = err;
    }
    await sleep(2000);
  }
  throw new DeployError(
    'unreachable',
    `${name} did not answer SSH within ${Math.round(timeoutMs / 1000)}s of its snapshot rollback: ${(last as Error)?.message ?? ''}`,
    { host: name },
  );
}

/** A stage whose hosts were all rolled back by a later failure did not stay deployed: its phase says so. */
function markRolledBackStages(state: RunState, rolledBack: HostRun[]): void {
  const back = new Set(rolledBack.filter((h) => h.rollback?.ok).map((h) => h.host.name));
  for (const p of state.phases) {
    if (p.kind !== 'stage' || p.status !== 'ok' || p.hosts.length === 0) continue;
    if (p.hosts.every((x) => back.has(x.host))) p.status = 'rolled_back';
  }
}
