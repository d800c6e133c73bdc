import * as core from '@actions/core';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { loadConfig } from '../config/load';
import { deploy, isFailure, prepare } from '../engine';
import { closeAbandoned, createStatusReporter, type OpenStatuses, type StatusMode } from '../github/statuses';
import { releaseRunLocks } from '../pipeline/cleanup';
import { renderPlan } from '../plan/plan';
import { mergePipelineReports, mergeReports } from '../report/merge';
import { renderSummary } from '../report/summary';
import type { Report } from '../report/types';
import { Redactor } from '../secrets/redact';
import { getCleanupInputs, getInputs, type ActionInputs } from './inputs';
import { findReportFiles, reportOutput } from './outputs';
import { state } from './state';
import { actionLogger } from './log-groups';
import { githubTagPublisher } from './tag-publisher';
import { completeShardMerge } from '../cli/merge-fleet';
import { planNotes } from '../cli/plan-notes';
import type { Config } from '../config/types';

function runInfo() {
  const server = process.env.GITHUB_SERVER_URL ?? 'https://github.com';
  const repo = process.env.GITHUB_REPOSITORY;
  const id = process.env.GITHUB_RUN_ID;
  return {
    id: id ? `${id}-${process.env.GITHUB_RUN_ATTEMPT ?? '1'}` : undefined,
    url: repo && id ? `${server}/${repo}/actions/runs/${id}` : undefined,
    actor: process.env.GITHUB_ACTOR,
    repository: repo,
  };
}

function writeKnownHosts(content: string): string | undefined {
  if (!content.trim()) return undefined;
  const dir = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'homelab-deploy-'));
  const file = path.join(dir, 'known_hosts');
  fs.writeFileSync(file, content.endsWith('\n') ? content : content + '\n', { mode: 0o600 });
  return file;
}

/**
 * `auto` means commit statuses: an action cannot see whether its job declares `environment:`, and when it does
 * GitHub has already recorded a deployment, so creating one more would show every deploy twice. Deployments are
 * used only when asked for, in jobs without an environment of their own.
 */
function statusMode(inputs: ActionInputs): StatusMode | undefined {
  if (inputs.statuses === 'off') return undefined;
  return inputs.statuses === 'deployments' ? 'deployments' : 'commit-status';
}

/** Every output, the report file and the job summary, the same way for a deploy and for a merge. */
async function publish(report: Report, inputs: ActionInputs, workspace: string): Promise<void> {
  const reportFile = inputs.reportFile
    ? path.resolve(workspace, inputs.reportFile)
    : path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'homelab-deploy-report.json');
  fs.mkdirSync(path.dirname(reportFile), { recursive: true });
  fs.writeFileSync(reportFile, JSON.stringify(report, null, 2) + '\n');
  const out = reportOutput(report, reportFile);
  if (out.compacted)
    core.notice(
      `The report output is compacted to stay under GitHub's 1 MB output limit; the full report is ${reportFile} (the report-file output): upload it as an artifact to hand it to other jobs.`,
    );
  core.setOutput('status', report.status);
  core.setOutput('phase', report.phase);
  core.setOutput('commit', report.release.commit);
  core.setOutput('systems-deployed', JSON.stringify(report.systemsDeployed));
  core.setOutput('duration-seconds', String(report.durationSeconds));
  core.setOutput('report', out.json);
  core.setOutput('report-file', reportFile);
  const attention = needsAttention(report);
  core.setOutput('needs-attention', JSON.stringify(attention));
  core.setOutput('escalated', String(!!report.escalation));
  core.setOutput('release-status', report.releaseSteps?.status ?? '');
  core.setOutput('release-tag', report.releaseSteps?.tag?.ok ? report.releaseSteps.tag.name : '');
  if (attention.length)
    core.error(
      `${attention.length} target${attention.length === 1 ? '' : 's'} need${attention.length === 1 ? 's' : ''} a human: ${attention.slice(0, 50).join(', ')}${attention.length > 50 ? ', ...' : ''} (a rollback failed, or the state could not be read back); check them with homelab-deploy status before the next deploy.`,
      { title: 'homelab-deploy: needs attention' },
    );
  await core.summary.addRaw(renderSummary(report)).write();
}

/**
 * The targets a human must look at. A merged report carries no list of its own, so it is read off the hosts: a
 * rollback that failed, or a state nobody knows (a shard that never reported).
 */
function needsAttention(report: Report): string[] {
  if (report.needsAttention) return report.needsAttention;
  return report.hosts
    .filter((h) => h.state === 'unknown' || (h.rollback && !h.rollback.ok))
    .map((h) => h.host);
}

function concludeJob(report: Report): void {
  if (isFailure(report.status)) {
    core.setFailed(
      `homelab-deploy ${report.status} in ${report.phase}: [${report.error?.class}] ${report.error?.message ?? ''}`,
    );
  } else if (report.status === 'partial_success') {
    core.warning(
      `homelab-deploy partial success: ${report.error?.message ?? ''}. Manual intervention required.`,
    );
  }
}

const matrixSchema = z.object({
  include: z.array(z.object({ shard: z.number(), targets: z.string() }).passthrough()),
});

/** Enough of a report to merge it; a file of another kind would otherwise fail deep inside the merge. */
const reportSchema = z
  .object({
    schema: z.literal(1),
    status: z.enum(['success', 'partial_success', 'failed', 'aborted', 'rolled_back']),
    release: z.object({ id: z.string(), commit: z.string(), ref: z.string() }).passthrough(),
    phases: z.array(z.object({ name: z.string() }).passthrough()),
    hosts: z.array(z.object({ host: z.string() }).passthrough()),
  })
  .passthrough();

function readJson(file: string, what: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  } catch (err) {
    throw new Error(`${what}: cannot read ${JSON.stringify(file)} as JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * The config for the overall failure budget of a shard merge, when the workspace has it (bulk-deploy.yml checks
 * it out); without one the shards' own budgets are all there is, which the merge says.
 */
function fleetConfig(inputs: ActionInputs, workspace: string): Config | undefined {
  const file = path.resolve(workspace, inputs.config);
  if (!fs.existsSync(file)) {
    core.info(
      `no config at ${inputs.config}: the overall failure budget is not applied (each shard applied its own)`,
    );
    return undefined;
  }
  try {
    return loadConfig(file);
  } catch (err) {
    core.warning(
      `the overall failure budget is not applied: ${inputs.config} does not load: ${err instanceof Error ? err.message : String(err)}`,
    );
    return undefined;
  }
}

/** Merge mode: combine the reports of earlier jobs or shards; connects nowhere. */
async function runMerge(inputs: ActionInputs, workspace: string): Promise<void> {
  const files = findReportFiles(inputs.mergeReports, workspace);
  const reports = files.map((f) => {
    const data = readJson(f, 'merge-reports');
    if (!reportSchema.safeParse(data).success)
      throw new Error(`merge-reports: ${JSON.stringify(f)} is not a homelab-deploy report.`);
    return data as Report;
  });
  core.info(`merging ${files.length} report(s): ${files.map((f) => path.relative(workspace, f)).join(', ')}`);
  let report: Report;
  if (inputs.mergeMode === 'pipeline') {
    report = mergePipelineReports(reports, inputs.mergeStatus || 'failed');
  } else {
    let expected: z.infer<typeof matrixSchema>['include'] | undefined;
    if (inputs.mergeMatrix) {
      const parsed = matrixSchema.safeParse(
        readJson(path.resolve(workspace, inputs.mergeMatrix), 'Input "merge-matrix"'),
      );
      if (!parsed.success)
        throw new Error(
          `Input "merge-matrix" (${JSON.stringify(inputs.mergeMatrix)}) is not the output of "homelab-deploy plan --shards N --json".`,
        );
      expected = parsed.data.include;
    }
    report = completeShardMerge(mergeReports(reports, { expected }), reports, fleetConfig(inputs, workspace));
  }
  await publish(report, inputs, workspace);
  concludeJob(report);
}

export async function run(): Promise<void> {
  try {
    const inputs = getInputs();
    const workspace = process.env.GITHUB_WORKSPACE ?? process.cwd();
    if (inputs.mergeReports.length) return await runMerge(inputs, workspace);

    const redactor = new Redactor();
    redactor.subscribe((v) => core.setSecret(v));
    redactor.add(inputs.sshKey);
    redactor.add(inputs.githubToken);
    for (const v of Object.values(inputs.secretsEnv)) redactor.add(v);
    const configPath = path.resolve(workspace, inputs.config);

    const targets = inputs.targets.length ? inputs.targets : undefined;
    if (inputs.dryRun) {
      const { plan, config } = prepare(configPath, inputs.phase, targets);
      const text = [renderPlan(plan), ...planNotes(config, plan)].join('\n');
      core.info(text);
      await core.summary.addHeading('homelab-deploy plan (dry run)', 2).addCodeBlock(text).write();
      core.setOutput('status', 'success');
      core.setOutput('phase', 'plan');
      core.setOutput('systems-deployed', '[]');
      core.setOutput('duration-seconds', '0');
      core.setOutput('needs-attention', '[]');
      core.setOutput('escalated', 'false');
      return;
    }

    const runToken = randomBytes(6).toString('hex');
    state.save('runToken', runToken);
    state.save('configPath', configPath);
    const knownHostsFile = writeKnownHosts(inputs.knownHosts);
    const controller = new AbortController();
    const onSignal = () => {
      core.warning('Cancellation received: stopping new steps, killing remote commands and releasing locks.');
      controller.abort();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);

    const config = loadConfig(configPath);
    const hostNames = Object.keys(config.hosts);
    const info = runInfo();
    const mode = statusMode(inputs);
    // Created once the ref is resolved: statuses go on the commit actually deployed.
    let statuses: ReturnType<typeof createStatusReporter> | undefined;
    const log = actionLogger({
      startGroup: (t) => core.startGroup(t),
      endGroup: () => core.endGroup(),
      info: (l) => core.info(l),
      error: (m, p) => core.error(m, p),
    });
    // The runner's checkout keeps no credentials, so the release tag goes through the API with the job's token.
    const tagPublisher =
      config.release?.tag && inputs.githubToken && info.repository
        ? githubTagPublisher({
            token: inputs.githubToken,
            repository: info.repository,
            warn: (m) => core.warning(m),
          })
        : undefined;

    const report = await deploy({
      configPath,
      phase: inputs.phase,
      ref: inputs.ref,
      targets,
      run: info,
      env: { ...inputs.secretsEnv, ...process.env },
      redactor,
      signal: controller.signal,
      fallbackKey: inputs.sshKey || undefined,
      fallbackKnownHosts: knownHostsFile,
      runToken,
      force: inputs.force,
      environment: inputs.environment || undefined,
      lockWaitMs: inputs.lockWaitMs,
      confirmed: inputs.confirm,
      ignoreWindow: inputs.ignoreWindow || undefined,
      releaseVersion: inputs.releaseVersion || undefined,
      skipTests: inputs.skipTests || undefined,
      rollbackOnFailure: inputs.rollbackOnFailure ? undefined : false,
      tagPublisher,
      onEvent: (e) => {
        if (e.type === 'run-start') {
          state.save('lockedHosts', JSON.stringify(hostNames));
          if (mode && inputs.githubToken && info.repository) {
            statuses = createStatusReporter({
              token: inputs.githubToken,
              repository: info.repository,
              sha: e.commit,
              runUrl: info.url,
              environment: inputs.environment || undefined,
              environmentUrl: inputs.environmentUrl || undefined,
              mode,
              warn: (m: string) => core.warning(m),
              onOpenChange: (open) => state.save('openStatuses', JSON.stringify(open)),
            });
          }
        }
        log.onEvent(e);
        if (e.type === 'phase-start') void statuses?.phaseStarted(e.phase);
        if (e.type === 'phase-end')
          void statuses?.phaseFinished(
            e.phase,
            e.ok ? 'success' : 'failure',
            e.ok ? `${e.phase} ok` : `${e.error?.class}: ${e.error?.message ?? ''}`,
          );
      },
    });
    log.close();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);

    await publish(report, inputs, workspace);
    await statuses?.finish(report);
    state.save('finished', 'true');
    concludeJob(report);
  } catch (err) {
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}

/**
 * Post step, for a main step that did not finish (cancelled, killed): release the locks this run took, then
 * close the statuses it left pending. Never fails the job.
 */
export async function cleanup(): Promise<void> {
  if (state.get('finished') === 'true') return;
  const inputs = getCleanupInputs();
  try {
    const runToken = state.get('runToken');
    const configPath = state.get('configPath');
    if (runToken && configPath) {
      const config = loadConfig(configPath);
      const hosts = (JSON.parse(state.get('lockedHosts') || '[]') as string[]).filter((h) => config.hosts[h]);
      const redactor = new Redactor();
      redactor.subscribe((v) => core.setSecret(v));
      redactor.add(inputs.sshKey);
      const results = await releaseRunLocks(config, runToken, hosts, {
        env: process.env,
        redactor,
        fallbackKey: inputs.sshKey || undefined,
        fallbackKnownHosts: writeKnownHosts(inputs.knownHosts),
      });
      for (const r of results) {
        if (r.released) core.info(`released the deploy lock on ${r.host}`);
        else if (r.error) core.warning(`could not release the lock on ${r.host}: ${r.error}`);
      }
    }
  } catch (err) {
    core.warning(`cleanup: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    const saved = state.get('openStatuses');
    const repository = process.env.GITHUB_REPOSITORY;
    if (!saved || !inputs.githubToken || !repository) return;
    const open = JSON.parse(saved) as OpenStatuses;
    if (!open.contexts.length && open.deploymentId === undefined) return;
    await closeAbandoned(open, {
      token: inputs.githubToken,
      repository,
      runUrl: runInfo().url,
      warn: (m) => core.warning(m),
    });
    core.info(
      `marked the statuses this run left pending as error: ${open.mode === 'deployments' ? `deployment ${open.deploymentId}` : open.contexts.join(', ')}`,
    );
  } catch (err) {
    core.warning(`cleanup: ${err instanceof Error ? err.message : String(err)}`);
  }
}
