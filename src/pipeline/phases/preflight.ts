import { preflight, readRollbackPoint, type PreflightState } from '../../deploy/host-ops';
import { DeployError } from '../../errors';
import { filesAtCommit } from '../../git/source';
import { mapLimit } from '../../util/concurrency';
import type { UploadFile } from '../../remote/sftp';
import { collectSecrets, renderEnvFile } from '../../secrets/env-file';
import { sleep } from '../../util/duration';
import type { RunContext } from '../../run/context';
import type { Heartbeats } from '../heartbeats';
import { abortingHostPhase, endPhase, startPhase } from '../phase-report';
import type { Plan, PlannedPhase } from '../plan';
import { hostRun, record, Stop, type HostRun, type RunState } from '../run-state';

export interface PreflightOutput {
  /** Rendered env file per host of the secrets phase; rendering fails here, before any host is touched. */
  envFiles: Map<string, string>;
}

/**
 * Everything that can fail without changing a host is checked here: secret values, the files of the commit, each
 * host's key, runtime, disk and lock. Locks are taken last on each host, and kept alive from that moment.
 */
export async function runPreflight(
  state: RunState,
  p: PlannedPhase,
  plan: Plan,
  opts: { files?: UploadFile[]; heartbeats: Heartbeats },
): Promise<PreflightOutput> {
  const { ctx } = state;
  const { config } = ctx;
  const envFiles = new Map<string, string>();
  try {
    const secretsPhase = plan.phases.find((x) => x.kind === 'secrets');
    if (config.secrets && secretsPhase) {
      const values = collectSecrets(config.secrets.keys, ctx.env);
      for (const [k, v] of Object.entries(values)) ctx.redactor.add(v, k);
      for (const label of ctx.redactor.shortLabels)
        ctx.emit({
          type: 'log',
          level: 'warn',
          message: `secret ${label} is shorter than 4 characters: it is masked only where it stands as a whole word`,
        });
      for (const name of secretsPhase.hosts)
        envFiles.set(name, renderEnvFile(values, config.hosts[name].envDialect));
    } else if (config.secrets) {
      // A later job (verify, say) writes no env file, but whatever values it has must still never be printed.
      for (const k of config.secrets.keys) if (ctx.env[k]) ctx.redactor.add(ctx.env[k] as string, k);
    }
    if (plan.phases.some((x) => x.kind === 'stage'))
      ctx.files = opts.files ?? filesAtCommit(config.source, ctx.release.commit);
  } catch (err) {
    const t0 = Date.now();
    const info = ctx.errorInfo(err, { phase: p.name });
    endPhase(state, startPhase(state, p), t0, info);
    throw new Stop('aborted', info);
  }

  await abortingHostPhase(
    state,
    p,
    async (name) => {
      const h = hostRun(state, name);
      h.attempted = true;
      const st = await preflightWithWait(ctx, h, p.name);
      h.locked = true;
      opts.heartbeats.start(h.host);
      h.before = st.current;
      h.startCurrent = st.current;
      h.onNew = st.current === ctx.release.id;
      h.releaseComplete = st.releaseComplete;
      if (st.lock !== 'ours')
        record(state, st.lock === 'taken-over' ? 'lock-taken-over' : 'lock-acquired', name);
      return {
        res: st.result,
        detail: { current: st.current, freeBytes: st.freeBytes, lock: st.lock, lockWaitMs: st.lockWaitMs },
      };
    },
    () => adoptRecordedRollbackPoints(state, plan),
  );
  return { envFiles };
}

/**
 * A host already on this release when the run starts was deployed by an earlier job of the same workflow (or an
 * earlier try). Its rollback target is the one that job recorded, not the release it runs now; a host without
 * such a record cannot be rolled back by this run, and says so if asked to.
 */
async function adoptRecordedRollbackPoints(state: RunState, plan: Plan): Promise<void> {
  const snapshotHosts = new Set(plan.phases.find((x) => x.kind === 'snapshot')?.hosts ?? []);
  const onNew = [...state.hosts.values()].filter((h) => h.onNew && !snapshotHosts.has(h.host.name));
  await mapLimit(onNew, state.ctx.config.parallel, async (h: HostRun) => {
    const point = await readRollbackPoint(state.ctx, h.host).catch(() => undefined);
    if (point) {
      h.before = point.previous;
      h.infraSnapshot = point.infraSnapshot;
    } else h.noRollbackPoint = true;
  });
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
