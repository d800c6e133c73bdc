import { loadConfig } from './config/load';
import { DeployError } from './errors';
import { resolveRef } from './git/ref';
import type { RunInfo } from './run/context';
import type { EventListener } from './run/events';
import { prepare } from './plan/prepare';
import { runManualRollback } from './pipeline/manual-rollback';
import { runDeploy } from './pipeline/runner';
import type { Report } from './report/types';
import { Redactor } from './secrets/redact';
import { notifyEscalation, notifyStarted, observabilitySecrets, publishOutcome } from './observe';
import { releaseIdFor } from './run/release';
import type { TagPublisher } from './release/tag';

export interface DeployRequest {
  configPath: string;
  phase: string; // "all" or comma list
  ref: string;
  targets?: string[];
  run?: RunInfo;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onEvent?: EventListener;
  redactor?: Redactor;
  fallbackKey?: string;
  fallbackKnownHosts?: string;
  runToken?: string;
  force?: boolean;
  /** Name of the environment this run deploys to, for notifications and metrics labels. */
  environment?: string;
  /** Overrides the config's lock.wait (the action's `lock-wait` input, the CLI's `--lock-wait`). */
  lockWaitMs?: number;
  /** The operator confirmed a run above checkpoint.above targets (`--yes`; the approved job's `confirm` input). */
  confirmed?: boolean;
  /** Deploy outside the config's window (audited). */
  ignoreWindow?: boolean;
  /** Outside the window, wait for it to open. */
  waitForWindow?: boolean;
  /** false: failures leave targets as they are (for debugging); the report says which. */
  rollbackOnFailure?: boolean;
  /** Skip tests this commit already passed on the same targets; 'force' skips them without a record (audited). */
  skipTests?: boolean | 'force';
  /** The release's version for its tag. */
  releaseVersion?: string;
  /** Publishes the release tag (the action passes the GitHub API one). */
  tagPublisher?: TagPublisher;
}

export { prepare, type Prepared } from './plan/prepare';

/** The one entry the action, the CLI and the demo share. */
export async function deploy(req: DeployRequest): Promise<Report> {
  // The token names this run's remote processes and lock; it reaches remote scripts, so its form is fixed.
  if (req.runToken !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(req.runToken))
    throw new DeployError(
      'config',
      `run token ${JSON.stringify(req.runToken)} must be 1-64 letters, digits, '.', '_' or '-'`,
    );
  const prepared = prepare(req.configPath, req.phase, req.targets);
  const { phases } = prepared;
  const config =
    req.lockWaitMs === undefined
      ? prepared.config
      : { ...prepared.config, lock: { ...prepared.config.lock, waitMs: req.lockWaitMs } };
  const commit = resolveRef(req.ref, config.dir);
  const redactor = req.redactor ?? new Redactor();
  const env = req.env ?? process.env;
  // Tokens and webhook URLs are masked from the first line on, whatever events the config sends.
  for (const s of observabilitySecrets(config, env)) redactor.add(s);
  const observe = {
    env,
    redactor,
    warn: (message: string) => void req.onEvent?.({ type: 'log', level: 'warn', message }),
    context: { repository: req.run?.repository, runUrl: req.run?.url, environment: req.environment },
  };
  const release = { id: releaseIdFor(commit), commit, ref: req.ref };
  await notifyStarted(config, release, observe);
  // An escalation goes out the moment the budget is passed, not when the run ends; the report says where it went.
  let escalated: Promise<Awaited<ReturnType<typeof notifyEscalation>>> | undefined;
  const onEvent: EventListener = (e) => {
    if (e.type === 'escalation') escalated = notifyEscalation(config, release, e.escalation, observe);
    return req.onEvent?.(e);
  };
  const report = await runDeploy({
    config,
    ref: req.ref,
    commit,
    phases,
    targets: req.targets,
    run: req.run,
    env,
    redactor,
    signal: req.signal,
    onEvent,
    fallbackKey: req.fallbackKey,
    fallbackKnownHosts: req.fallbackKnownHosts,
    runToken: req.runToken,
    force: req.force,
    confirmed: req.confirmed,
    ignoreWindow: req.ignoreWindow,
    waitForWindow: req.waitForWindow,
    releaseVersion: req.releaseVersion,
    tagPublisher: req.tagPublisher,
    rollbackOnFailure: req.rollbackOnFailure,
    skipTests: req.skipTests,
  });
  if (escalated && report.escalation) Object.assign(report.escalation, await escalated);
  // Notifications and metrics never change a deploy's result, not even by throwing.
  await publishOutcome(config, report, observe).catch((err: unknown) =>
    observe.warn(`publishing the outcome failed: ${redactor.redact(String((err as Error)?.message ?? err))}`),
  );
  return report;
}

export { isFailure } from './report/status';

export interface RollbackRequest {
  configPath: string;
  /** `previous`, or a version every selected target has (`homelab-deploy releases` lists them). */
  to: string;
  targets?: string[];
  run?: RunInfo;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onEvent?: EventListener;
  redactor?: Redactor;
  fallbackKey?: string;
  fallbackKnownHosts?: string;
  confirmed?: boolean;
}

/** `homelab-deploy rollback`: targets back to a recorded version, no rebuild; same locks, audit and report. */
export async function rollback(req: RollbackRequest): Promise<Report> {
  const config = loadConfig(req.configPath);
  const redactor = req.redactor ?? new Redactor();
  const env = req.env ?? process.env;
  for (const s of observabilitySecrets(config, env)) redactor.add(s);
  if (config.secrets) for (const k of config.secrets.keys) if (env[k]) redactor.add(env[k] as string, k);
  return runManualRollback({
    config,
    to: req.to,
    targets: req.targets,
    run: req.run,
    env,
    redactor,
    signal: req.signal,
    onEvent: req.onEvent,
    fallbackKey: req.fallbackKey,
    fallbackKnownHosts: req.fallbackKnownHosts,
    confirmed: req.confirmed,
  });
}
