import type { Plan } from '../plan/plan';
import type { DeployStatus } from '../report/types';
import {
  gitTagPublisher,
  prepareRelease,
  releaseSkipReason,
  runReleaseSteps,
  syncApplies,
  type PreparedRelease,
  type ReleaseRun,
} from '../release/steps';
import { checkUpToDate } from '../release/sync';
import type { TagPublisher } from '../release/tag';
import type { ReleaseReport, SyncReport } from '../release/types';
import { record, type RunState } from './run-state';

/** What a run carries from before staging to after the release stage. */
export interface ReleaseStepsRun {
  prepared?: PreparedRelease;
  publisher?: TagPublisher;
  sync?: SyncReport;
}

/**
 * Before anything is deployed: the up-to-date check (a commit that lacks the tip of the branch is refused) and
 * the release worked out (its tag name, a tag on another commit refused). Needs no target; a failure aborts the
 * run with nothing changed.
 */
export async function beforeRelease(
  state: RunState,
  plan: Plan,
  opts: { version?: string; publisher?: TagPublisher },
): Promise<ReleaseStepsRun> {
  const { ctx } = state;
  const rel = ctx.config.release;
  if (!rel) return {};
  const deployed = plan.phases.filter((p) => p.kind === 'stage').map((p) => p.name);
  const run: ReleaseRun = {
    dir: ctx.config.dir,
    project: ctx.config.project,
    commit: ctx.release.commit,
    releaseId: ctx.release.id,
    ref: ctx.release.ref,
    runUrl: ctx.run.url,
    explicitVersion: opts.version,
    signal: ctx.signal,
    env: ctx.env,
  };
  const publisher = opts.publisher ?? gitTagPublisher(rel, run);
  const out: ReleaseStepsRun = { publisher };
  if (syncApplies(rel, deployed) && rel.sync) out.sync = await checkUpToDate(rel.sync, run);
  if ((rel.tag || rel.changelog) && deployed.includes(rel.onStage))
    out.prepared = await prepareRelease(rel, run, publisher);
  return out;
}

/**
 * After the run: the tag and the changelog, when the release stage went live in this run. They never change the
 * run's status (production is live and passed its checks): a failure is reported and left to be redone.
 */
export async function afterRelease(
  state: RunState,
  steps: ReleaseStepsRun,
  status: DeployStatus,
): Promise<ReleaseReport | undefined> {
  const { ctx } = state;
  const rel = ctx.config.release;
  if (!rel || (!steps.prepared && !steps.sync)) return undefined;
  if (!steps.prepared)
    return { status: 'skipped', reason: 'no release stage in this run', sync: steps.sync, durationMs: 0 };
  const skip = ctx.signal.aborted ? 'the run was cancelled' : releaseSkipReason(rel, status, state.phases);
  const report: ReleaseReport = skip
    ? { status: 'skipped', reason: skip, durationMs: 0 }
    : await runReleaseSteps(steps.prepared, steps.publisher, { redact: (t) => ctx.redactor.redact(t) });
  if (report.tag?.ok && report.tag.created)
    record(
      state,
      'release-tagged',
      ctx.config.project,
      `${report.tag.name} on ${report.tag.commit.slice(0, 12)} (${report.tag.via})`,
    );
  if (report.changelog?.ok && report.changelog.written)
    record(state, 'changelog-written', ctx.config.project, report.changelog.file);
  if (report.status === 'failed')
    ctx.emit({
      type: 'log',
      level: 'warn',
      message: `release steps failed (the deploy stands): ${report.tag?.error?.message ?? report.changelog?.error?.message ?? 'see the report'}`,
    });
  return { ...report, sync: steps.sync };
}
