import { DeployError } from '../../errors';
import { filesAtCommit } from '../../git/source';
import type { UploadFile } from '../../remote/sftp';
import type { HostPhaseReport } from '../../report/types';
import { collectSecrets, renderEnvFile } from '../../secrets/env-file';
import { mapLimit } from '../../util/concurrency';
import { sleep } from '../../util/duration';
import type { Heartbeats } from '../heartbeats';
import { endPhase, firstFailure, hostResult, startPhase } from '../phase-report';
import type { Plan, PlannedPhase } from '../../plan/plan';
import { record, Stop, targetRun, type RunState, type TargetRun } from '../run-state';

export interface PreflightOutput {
  /** Rendered env file per target of the secrets phase; rendering fails here, before any target is touched. */
  envFiles: Map<string, string>;
}

/** Longest pause between two tries to take locks another run holds; the jitter keeps waiting runs apart. */
const LOCK_POLL_MS = 5000;

/**
 * What the run needs before it talks to any target, and what can fail without changing one: secret values (and
 * every env file rendered from them), the files of the commit. A failure ends the run as aborted, reported as a
 * pre-flight failure.
 */
export function prepareRun(state: RunState, plan: Plan, opts: { files?: UploadFile[] }): PreflightOutput {
  const { ctx } = state;
  const { config } = ctx;
  const envFiles = new Map<string, string>();
  try {
    const writing = plan.phases.some((x) => x.kind === 'secrets' || x.kind === 'stage');
    if (config.secrets && writing) {
      const values = collectSecrets(config.secrets.keys, ctx.env);
      for (const [k, v] of Object.entries(values)) ctx.redactor.add(v, k);
      for (const label of ctx.redactor.shortLabels)
        ctx.emit({
          type: 'log',
          level: 'warn',
          message: `secret ${label} is shorter than 4 characters: it is masked only where it stands as a whole word`,
        });
      // Every SSH target the run may write to: those of the secrets phase, and a fleet's, which write their own.
      for (const name of plan.hosts) {
        const host = config.hosts[name];
        if (host) envFiles.set(name, renderEnvFile(values, host.envDialect));
      }
    } else if (config.secrets) {
      // A later job (verify, say) writes no env file, but whatever values it has must still never be printed.
      for (const k of config.secrets.keys) if (ctx.env[k]) ctx.redactor.add(ctx.env[k] as string, k);
    }
    if (plan.phases.some((x) => x.kind === 'stage'))
      ctx.files = opts.files ?? filesAtCommit(config.source, ctx.release.commit);
  } catch (err) {
    const t0 = Date.now();
    const info = ctx.errorInfo(err, { phase: 'preflight' });
    endPhase(
      state,
      startPhase(state, { name: 'preflight', kind: 'preflight', hosts: [], steps: [] }),
      t0,
      info,
    );
    throw new Stop('aborted', info);
  }
  return { envFiles };
}

/**
 * Pre-flight of every target that is checked up front: reachability, runtime, disk and lock. Locks are taken last
 * on each target, and kept alive from that moment.
 */
export async function runPreflight(
  state: RunState,
  p: PlannedPhase,
  plan: Plan,
  heartbeats: Heartbeats,
): Promise<void> {
  const t0 = Date.now();
  const r = startPhase(state, p);
  r.hosts = p.hosts.length ? await acquireAll(state, p, heartbeats) : [];
  const failed = firstFailure(r);
  if (!failed) await adoptRecordedRollbackPoints(state, plan);
  endPhase(state, r, t0, failed);
  if (failed) throw new Stop('aborted', failed);
}

/**
 * Pre-flight of every target, taking their locks without deadlock when runs start together: the targets are
 * taken in one global order (by name), the first of them alone, as a gate (two runs over the same targets meet
 * there, and the one that loses has touched nothing else), then the rest at once. When another run holds any of
 * them, every lock this try took is given back before waiting, so no run ever waits while holding a lock
 * another waiting run needs. Without lock.wait the run then aborts, having changed nothing.
 */
async function acquireAll(
  state: RunState,
  p: PlannedPhase,
  heartbeats: Heartbeats,
): Promise<HostPhaseReport[]> {
  const { ctx } = state;
  const deadline = Date.now() + ctx.config.lock.waitMs;
  const ordered = [...p.hosts].sort();
  let waitedMs = 0;
  for (;;) {
    const [gate, ...rest] = ordered;
    const reports = new Map<string, HostPhaseReport>();
    const gateReport = await preflightOne(state, p.name, gate, waitedMs, heartbeats);
    reports.set(gate, gateReport);
    // Only a gate held by another run stops the others from being tried; any other failure is reported with theirs.
    if (gateReport.error?.class !== 'lock-held')
      for (const [i, rep] of (
        await mapLimit(rest, ctx.config.parallel, (n) => preflightOne(state, p.name, n, waitedMs, heartbeats))
      ).entries())
        reports.set(rest[i], rep);
    const failed = [...reports.values()].filter((x) => !x.ok);
    const lockHeld = failed.length > 0 && failed.every((x) => x.error?.class === 'lock-held');
    if (failed.length === 0 || !lockHeld || Date.now() >= deadline || ctx.signal.aborted)
      return ordered.map((n) => reports.get(n) ?? notTried(state, p, n, gate));
    // Give back what this try took, then wait for the holder.
    await mapLimit(
      [...reports.values()].filter((x) => x.ok),
      ctx.config.parallel,
      async (x) => {
        const h = targetRun(state, x.host);
        heartbeats.stop(x.host);
        if (await h.target.releaseLock().catch(() => false)) record(state, 'lock-released', x.host);
        h.locked = false;
      },
    );
    const pause = Math.min(LOCK_POLL_MS * (0.5 + Math.random()), Math.max(0, deadline - Date.now()));
    ctx.emit({
      type: 'log',
      level: 'info',
      message: `${failed[0].error?.message}; waiting (up to ${Math.round((deadline - Date.now()) / 1000)}s more)`,
    });
    await sleep(pause, ctx.signal);
    waitedMs += pause;
  }
}

/** One target's pre-flight and lock; its result, with the lock kept alive from the moment it is taken. */
export async function preflightOne(
  state: RunState,
  phase: string,
  name: string,
  waitedMs: number,
  heartbeats: Heartbeats,
): Promise<HostPhaseReport> {
  const h0 = Date.now();
  const h = targetRun(state, name);
  h.attempted = true;
  try {
    const st = await h.target.preflight(phase);
    h.locked = true;
    heartbeats.start(h.target, () => !!h.idle);
    h.before = st.current;
    h.startCurrent = st.current;
    h.onNew = st.onNew;
    h.startedOnNew = st.onNew;
    if (st.onNew && st.current !== null) h.newVersion = st.current;
    h.prepared = st.prepared;
    if (st.lock !== 'ours' && st.lock !== 'none')
      record(state, st.lock === 'taken-over' ? 'lock-taken-over' : 'lock-acquired', name);
    const rep = hostResult(state, phase, name, h0, st.steps);
    rep.detail = { current: st.current, ...st.detail, lock: st.lock, lockWaitMs: waitedMs };
    return rep;
  } catch (err) {
    return hostResult(state, phase, name, h0, undefined, err);
  }
}

function notTried(state: RunState, p: PlannedPhase, name: string, gate: string): HostPhaseReport {
  return hostResult(
    state,
    p.name,
    name,
    Date.now(),
    undefined,
    new DeployError(
      'lock-held',
      `not checked: ${gate} (locks are taken in name order, ${gate} first) is locked by another run`,
      { host: name },
    ),
  );
}

/**
 * A target already on this release when the run starts was deployed by an earlier job of the same workflow (or
 * an earlier try). Its rollback target is the one that job recorded, not the release it runs now; a target
 * without such a record cannot be rolled back by this run, and says so if asked to.
 */
async function adoptRecordedRollbackPoints(state: RunState, plan: Plan): Promise<void> {
  const snapshotHosts = new Set(plan.phases.find((x) => x.kind === 'snapshot')?.hosts ?? []);
  const onNew = [...state.runs.values()].filter((h) => h.onNew && !snapshotHosts.has(h.target.name));
  await mapLimit(onNew, state.ctx.config.parallel, async (h: TargetRun) => {
    const point = await h.target.readRollbackPoint().catch(() => undefined);
    if (point) {
      h.before = point.previous;
      h.infraSnapshot = point.infraSnapshot;
    } else h.noRollbackPoint = true;
  });
}
