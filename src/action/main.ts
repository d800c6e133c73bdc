import * as core from '@actions/core';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../config/load';
import { deploy, isFailure, prepare } from '../engine';
import { createStatusReporter } from '../github/statuses';
import { releaseRunLocks } from '../pipeline/cleanup';
import { renderPlan } from '../pipeline/plan';
import { renderEvent } from '../report/text';
import { renderSummary } from '../report/summary';
import { Redactor } from '../secrets/redact';
import { getCleanupInputs, getInputs } from './inputs';
import { state } from './state';

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

export async function run(): Promise<void> {
  try {
    const inputs = getInputs();
    const redactor = new Redactor();
    redactor.subscribe((v) => core.setSecret(v));
    redactor.add(inputs.sshKey);
    redactor.add(inputs.githubToken);
    for (const v of Object.values(inputs.secretsEnv)) redactor.add(v);
    const workspace = process.env.GITHUB_WORKSPACE ?? process.cwd();
    const configPath = path.resolve(workspace, inputs.config);

    if (inputs.dryRun) {
      const { plan } = prepare(configPath, inputs.phase, inputs.targets);
      const text = renderPlan(plan);
      core.info(text);
      await core.summary.addHeading('homelab-deploy plan (dry run)', 2).addCodeBlock(text).write();
      core.setOutput('status', 'success');
      core.setOutput('phase', 'plan');
      core.setOutput('systems-deployed', '[]');
      core.setOutput('duration-seconds', '0');
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
    config.lock.waitMs = Math.max(config.lock.waitMs, inputs.lockWaitMs);
    const info = runInfo();
    // Created once the ref is resolved: statuses go on the commit actually deployed.
    let statuses: ReturnType<typeof createStatusReporter> | undefined;
    const pending: Promise<unknown>[] = [];
    let inGroup = false;

    const report = await deploy({
      configPath,
      phase: inputs.phase,
      ref: inputs.ref,
      targets: inputs.targets.length ? inputs.targets : undefined,
      run: info,
      env: { ...inputs.secretsEnv, ...process.env },
      redactor,
      signal: controller.signal,
      fallbackKey: inputs.sshKey || undefined,
      fallbackKnownHosts: knownHostsFile,
      runToken,
      force: inputs.force,
      environment: inputs.environment || undefined,
      onEvent: (e) => {
        if (e.type === 'run-start') {
          state.save('lockedHosts', JSON.stringify(Object.keys(config.hosts)));
          if (inputs.statuses && inputs.githubToken && info.repository) {
            statuses = createStatusReporter({
              token: inputs.githubToken,
              repository: info.repository,
              sha: e.commit,
              runUrl: info.url,
              environment: inputs.environment || undefined,
              useDeployments: false,
              warn: (m: string) => core.warning(m),
            });
          }
        }
        if (e.type === 'phase-start') {
          if (inGroup) core.endGroup();
          core.startGroup(`${e.phase} [${e.hosts.join(', ')}]`);
          inGroup = true;
          if (statuses) pending.push(statuses.phaseStarted(e.phase));
        }
        const line = renderEvent(e);
        if (line) core.info(line);
        if (e.type === 'phase-end') {
          core.endGroup();
          inGroup = false;
          if (!e.ok)
            core.error(`${e.phase}: [${e.error?.class}] ${e.error?.message}`, {
              title: `homelab-deploy ${e.phase} failed`,
            });
          if (statuses)
            pending.push(
              statuses.phaseFinished(
                e.phase,
                e.ok ? 'success' : 'failure',
                e.ok ? `${e.phase} ok` : `${e.error?.class}: ${e.error?.message ?? ''}`,
              ),
            );
        }
      },
    });
    if (inGroup) core.endGroup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);

    const json = JSON.stringify(report, null, 2);
    const reportFile = inputs.reportFile
      ? path.resolve(workspace, inputs.reportFile)
      : path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'homelab-deploy-report.json');
    fs.mkdirSync(path.dirname(reportFile), { recursive: true });
    fs.writeFileSync(reportFile, json + '\n');
    core.setOutput('status', report.status);
    core.setOutput('phase', report.phase);
    core.setOutput('systems-deployed', JSON.stringify(report.systemsDeployed));
    core.setOutput('duration-seconds', String(report.durationSeconds));
    core.setOutput('report', JSON.stringify(report));
    core.setOutput('report-file', reportFile);
    await core.summary.addRaw(renderSummary(report)).write();
    if (statuses) {
      pending.push(statuses.finish(report));
      await Promise.allSettled(pending);
    }
    state.save('finished', 'true');

    if (isFailure(report.status)) {
      core.setFailed(
        `homelab-deploy ${report.status} in ${report.phase}: [${report.error?.class}] ${report.error?.message ?? ''}`,
      );
    } else if (report.status === 'partial_success') {
      core.warning(
        `homelab-deploy partial success: ${report.error?.message ?? ''}. Manual intervention required.`,
      );
    }
  } catch (err) {
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}

/** Post step: if main did not finish (cancelled, killed), release the locks this run took. Never fails the job. */
export async function cleanup(): Promise<void> {
  try {
    if (state.get('finished') === 'true') return;
    const runToken = state.get('runToken');
    const configPath = state.get('configPath');
    if (!runToken || !configPath) return;
    const config = loadConfig(configPath);
    const hosts = (JSON.parse(state.get('lockedHosts') || '[]') as string[]).filter((h) => config.hosts[h]);
    const inputs = getCleanupInputs();
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
  } catch (err) {
    core.warning(`cleanup: ${err instanceof Error ? err.message : String(err)}`);
  }
}
