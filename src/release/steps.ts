import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeployError, toDeployError } from '../errors';
import type { DeployStatus, PhaseReport } from '../report/types';
import { appendChangelog } from './changelog';
import { validateSha } from './names';
import { GitTagPublisher, tagConflict, type TagPublisher } from './tag';
import { renderTagMessage, renderTagName, tagGlob } from './tag-templates';
import type { ReleaseErrorInfo, ReleaseReport, ReleaseSettings } from './types';
import { resolveVersion } from './version';

/** What the release steps need of the run; plain data, so they run the same from the pipeline, the CLI or a test. */
export interface ReleaseRun {
  /** The config's directory (inside the repository). */
  dir: string;
  project: string;
  commit: string;
  releaseId: string;
  ref: string;
  runUrl?: string;
  /** The CLI's --release-version / the action's release-version input. */
  explicitVersion?: string;
  now?: Date;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

/** The release as it will be published, worked out before anything is deployed. */
export interface PreparedRelease {
  settings: ReleaseSettings;
  run: ReleaseRun;
  date: string;
  tag?: { name: string; version: string; versionFrom: string; message: string };
}

export function utcDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** Whether this run must pass the up-to-date check: it deploys a stage (one of `sync.stages` when listed). */
export function syncApplies(settings: ReleaseSettings, deployedStages: string[]): boolean {
  if (!settings.sync) return false;
  const wanted = settings.sync.stages;
  return deployedStages.some((s) => wanted.length === 0 || wanted.includes(s));
}

/** The CLI's publisher: git on the runner, pushing to the configured remote. */
export function gitTagPublisher(settings: ReleaseSettings, run: ReleaseRun): GitTagPublisher | undefined {
  const t = settings.tag;
  if (!t) return undefined;
  return new GitTagPublisher({
    dir: run.dir,
    push: t.push,
    remote: t.remote,
    timeoutMs: t.timeoutMs,
    signal: run.signal,
    env: run.env,
  });
}

/**
 * Works out the version, tag name and message, and refuses (class `precondition`) a release whose tag already
 * names another commit, all before staging: a tag that cannot be made should stop the run while production is
 * untouched, not after it changed. The changelog's directory must exist for the same reason.
 */
export async function prepareRelease(
  settings: ReleaseSettings,
  run: ReleaseRun,
  publisher?: TagPublisher,
): Promise<PreparedRelease> {
  validateSha(run.commit, 'the commit to release');
  const date = utcDate(run.now ?? new Date());
  const prepared: PreparedRelease = { settings, run, date };
  if (settings.tag) {
    const { version, from } = await resolveVersion(settings.tag.version, {
      dir: run.dir,
      commit: run.commit,
      explicit: run.explicitVersion,
      signal: run.signal,
    });
    const values = { ...run, version, date };
    const name = renderTagName(settings.tag.name, values);
    const message = renderTagMessage(settings.tag.message, { ...values, tag: name });
    prepared.tag = { name, version, versionFrom: from, message };
    const existing = publisher?.lookup ? await publisher.lookup(name) : undefined;
    if (existing && existing !== run.commit) throw tagConflict(name, existing, run.commit);
  }
  if (settings.changelog) {
    const dir = path.dirname(settings.changelog.file);
    if (!fs.existsSync(dir))
      throw new DeployError(
        'config',
        `release.changelog.file: the directory ${dir} does not exist; create it (the file itself is created on the first release)`,
      );
  }
  return prepared;
}

/**
 * Why the release steps do not run after this run, or undefined when they do: the release stage must have run
 * and passed, and the deploy must have kept it (success, or partial_success where a later stage failed).
 */
export function releaseSkipReason(
  settings: ReleaseSettings,
  status: DeployStatus,
  phases: Pick<PhaseReport, 'name' | 'status'>[],
): string | undefined {
  const stage = phases.find((p) => p.name === settings.onStage);
  if (!stage) return `stage ${settings.onStage} was not part of this run`;
  if (stage.status !== 'ok') return `stage ${settings.onStage} did not succeed (${stage.status})`;
  if (status !== 'success' && status !== 'partial_success')
    return `the deploy ended ${status}, so ${settings.onStage} may not run this release`;
  return undefined;
}

function info(err: unknown, redact: (t: string) => string): ReleaseErrorInfo {
  const e = toDeployError(err);
  return { class: e.errorClass, message: redact(e.message) };
}

/**
 * Tags the deployed commit, then adds the changelog entry; never throws. A failure is reported with its class
 * (status `failed`) and changes nothing about the deploy. The changelog follows the tag, not the other way: an
 * entry must not announce a release whose tag could not be made.
 */
export async function runReleaseSteps(
  prepared: PreparedRelease,
  publisher: TagPublisher | undefined,
  opts: { redact?: (text: string) => string } = {},
): Promise<ReleaseReport> {
  const started = Date.now();
  const redact = opts.redact ?? ((t: string) => t);
  const { settings, run } = prepared;
  const report: ReleaseReport = { status: 'ok', durationMs: 0 };
  const t = prepared.tag;
  if (t) {
    report.tag = {
      name: t.name,
      version: t.version,
      commit: run.commit,
      via: publisher?.via ?? 'git',
      ok: false,
      created: false,
    };
    try {
      if (!publisher) throw new DeployError('internal', 'no way to publish the release tag was set up');
      const res = await publisher.publish(t.name, run.commit, t.message);
      Object.assign(report.tag, { ok: true, created: res.created, pushed: res.pushed });
    } catch (err) {
      report.tag.error = info(err, redact);
      report.status = 'failed';
    }
  }
  if (settings.changelog && t) {
    const file = settings.changelog.file;
    if (report.status === 'failed') {
      report.changelog = {
        file,
        ok: false,
        written: false,
        commits: 0,
        error: { class: 'precondition', message: `not written: the release tag ${t.name} was not made` },
      };
    } else {
      try {
        const res = await appendChangelog(settings.changelog, {
          dir: run.dir,
          tag: t.name,
          commit: run.commit,
          releaseId: run.releaseId,
          date: prepared.date,
          runUrl: run.runUrl,
          tagGlob: tagGlob(settings.tag?.name ?? t.name),
          signal: run.signal,
        });
        report.changelog = { ...res, ok: true };
      } catch (err) {
        report.changelog = { file, ok: false, written: false, commits: 0, error: info(err, redact) };
        report.status = 'failed';
      }
    }
  }
  report.durationMs = Date.now() - started;
  return report;
}
