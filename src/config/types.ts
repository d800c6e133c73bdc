import type { ErrorClass } from '../errors';
import type { ReleaseSettings } from '../release/types';
import type { ConfigIssue } from './errors';

/** The config after validation and defaulting: every value the engine reads is present and typed. */
export interface SshSettings {
  user: string;
  port: number;
  key?: string;
  keyEnv?: string;
  passphraseEnv?: string;
  knownHosts?: string;
  fingerprints: string[];
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCount: number;
  maxChannels: number;
  jump?: string;
}

export type DeploySettings =
  | {
      strategy: 'compose';
      command: string;
      files: string[];
      pull: boolean;
      upFlags: string[];
      downFlags: string[];
      timeoutMs: number;
    }
  | { strategy: 'command'; up: string; down?: string; timeoutMs: number };

export type SnapshotSettings = {
  keep: number;
  rollbackOnFailure: boolean;
} & (
  | {
      provider: 'proxmox';
      api: string;
      node: string;
      vmid: number;
      type: 'qemu' | 'lxc';
      tokenEnv: string;
      caFile?: string;
      fingerprint?: string;
      timeoutMs: number;
      taskTimeoutMs: number;
    }
  | { provider: 'command'; create: string; rollback: string; delete?: string }
);

/** What every kind of target has: a name, the default pipeline's stage tag, labels for selection, vars for templates. */
export interface TargetBase {
  name: string;
  /** `staging | production | public` when the default pipeline is built from tags (no `stages:`). */
  stageTag?: 'staging' | 'production' | 'public';
  /** For `--targets key=value` selection and for grouping a fleet's report. */
  labels: Record<string, string>;
  vars: Record<string, string>;
}

/** An SSH host: release folders, a `current` link, compose or up/down commands, host-side lock and logs. */
export interface HostConfig extends TargetBase {
  kind: 'ssh';
  address: string;
  ssh: SshSettings;
  path: string;
  deploy: DeploySettings;
  runtimeCheck: string;
  minFreeDiskBytes: number;
  keepReleases: number;
  snapshot?: SnapshotSettings;
  envDialect: 'compose' | 'python-dotenv';
}

/** Where targets without a host of their own keep their lock, release log and rollback points. */
export type StateStoreSettings = { kind: 'dir'; path: string };

/** A Vercel project, deployed through the Vercel REST API. */
export interface VercelTargetConfig extends TargetBase {
  kind: 'vercel';
  /** Project id (prj_...) or name. */
  project: string;
  /** Team id (team_...) or slug, sent as teamId / slug. */
  team?: string;
  tokenEnv: string;
  apiUrl: string;
  /**
   * `production`: create a production deployment without assigning its domains, check it on its own URL, then
   * promote it. `preview`: create a preview deployment, check it, then promote it to production.
   */
  promote: 'production' | 'preview';
  /** What is deployed: the commit through Vercel's git integration, or the source files uploaded. */
  source: { type: 'git'; provider: 'github' | 'gitlab' | 'bitbucket'; repo: string } | { type: 'files' };
  /** Domains that must point at the new deployment once it is promoted. */
  domains: string[];
  /** How long a build may take before the deploy counts as timed out. */
  buildTimeoutMs: number;
  pollIntervalMs: number;
  state: StateStoreSettings;
  /** Client-side pacing, shared by every Vercel target of a team. */
  limits: { plan: 'hobby' | 'pro' | 'enterprise'; concurrentBuilds: number; deploymentsPerDay: number };
}

/** A platform driven by commands on the runner (CDK, kubectl, helm, terraform, a script). */
export interface RunnerTargetConfig extends TargetBase {
  kind: 'runner';
  /** Prints the live version (recorded as the rollback point). */
  current: string;
  /** Deploys the release. */
  up: string;
  /** Returns to $HD_PREVIOUS. */
  rollback: string;
  /** Removes a first deploy (there is no previous version to return to). */
  down?: string;
  /** Taken before the target is changed (a database backup); its output is recorded. */
  snapshot?: string;
  /** Directory the commands run in (absolute; the config's directory by default). */
  cwd: string;
  timeoutMs: number;
  state: StateStoreSettings;
}

export type TargetConfig = HostConfig | VercelTargetConfig | RunnerTargetConfig;

export interface HealthCheck {
  name: string;
  kind: 'http' | 'tcp' | 'command' | 'compose';
  target: string; // URL, host:port, command, or comma-separated compose services ('' = all)
  method: string;
  headers: Record<string, string>;
  caFile?: string;
  expect: {
    status?: number[];
    body?: string;
    bodyRegex?: string;
    json?: Record<string, string | number | boolean | null>;
    maxResponseTimeMs?: number;
    release?: { in: 'header' | 'json'; key: string };
    exitCode?: number;
    output?: string;
    outputRegex?: string;
  };
  timeoutMs: number;
  intervalMs: number;
  retries: number; // failed attempts tolerated before the check fails
  successes: number; // consecutive passes needed
  startPeriodMs: number;
  deadlineMs?: number;
}

export interface RetryPolicy {
  attempts: number;
  delayMs: number;
  factor: number;
  maxDelayMs: number;
  jitter: number;
  on: ErrorClass[];
}

export interface TestsConfig {
  run: string;
  junit?: string;
  on: string; // 'runner' or a host name
  timeoutMs: number;
}

/** A wave's size: a count of targets, or a share of the stage's targets. */
export type WaveSize = { count: number } | { percent: number };

/**
 * How a stage rolls out when it holds many targets: in waves (the first is the canary), with a failure budget
 * that stops the rollout and applies a rollback policy when it is passed.
 */
export interface RolloutSettings {
  /** Wave sizes; the last one repeats until every target is done. */
  waves: WaveSize[];
  pauseMs: number;
  soakMs: number;
  /** Per wave and over the whole stage; undefined = no percentage budget. */
  maxFailPercentage?: number;
  /** Failed targets tolerated over the whole stage; undefined = no count budget. */
  maxFail?: number;
  onBudgetExceeded: 'rollback-failed' | 'rollback-wave' | 'rollback-all';
  /** `per-target`: a target failing pre-flight is left out and counted; `all`: every target must pass first. */
  preflight: 'per-target' | 'all';
  /** Declared in the config, or applied because the stage is large. */
  implicit: boolean;
}

export interface WindowSettings {
  /** Days of the week the window opens on (0 = Sunday), in the window's time zone. */
  days: number[];
  /** Minutes after midnight. `to` < `from` spans midnight. */
  fromMinutes: number;
  toMinutes: number;
  tz: string;
  /** Outside the window, wait for it instead of refusing. */
  wait: boolean;
  /** As written, for messages. */
  text: string;
}

export interface StageConfig {
  name: string;
  /** Target names of any kind (the config file's `hosts:` list of the stage). */
  targets: string[];
  health: HealthCheck[];
  tests?: TestsConfig;
  retry: RetryPolicy;
  onFailure: 'rollback-stage' | 'rollback-all';
  parallel: number;
  /** Set for fleets: waves, failure budget, per-target pre-flight. */
  rollout?: RolloutSettings;
}

export interface LockSettings {
  staleAfterMs: number;
  takeoverStale: boolean;
  waitMs: number;
}

export type NotifyEvent =
  'started' | 'succeeded' | 'partial_success' | 'failed' | 'rolled_back' | 'rollback_failed' | 'escalation';

export interface NotifySettings {
  events: NotifyEvent[];
  timeoutMs: number;
  retries: number;
  telegram?: { tokenEnv: string; chatId: string; apiUrl: string };
  slack?: { webhookEnv: string };
  discord?: { webhookEnv: string };
  webhook?: { urlEnv: string; secretEnv?: string };
}

export interface MetricsSettings {
  pushgateway?: { url: string; job: string; usernameEnv?: string; passwordEnv?: string };
  textfile?: string;
  environment?: string;
}

export interface Config {
  file: string;
  dir: string;
  project: string;
  source: string; // absolute directory whose files are deployed
  /** The SSH hosts (a subset of `targets`). */
  hosts: Record<string, HostConfig>;
  /** Every target of every kind, SSH hosts included; one namespace. */
  targets: Record<string, TargetConfig>;
  secrets?: { file: string; keys: string[] };
  stages: StageConfig[];
  verify: { health: HealthCheck[]; onFailure: 'rollback-all' | 'none' };
  lock: LockSettings;
  parallel: number;
  /** A run touching more targets than this needs a confirmation (`--yes`, or the workflow's approval). */
  checkpointAbove: number;
  window?: WindowSettings;
  /** Release steps: up-to-date check before staging, tag and changelog after the release stage. */
  release?: ReleaseSettings;
  notify?: NotifySettings;
  metrics?: MetricsSettings;
  /**
   * Things that are not errors but decide whether a run can work, e.g. a host that relies on the action's ssh-key
   * input. `validate` prints them; each carries the file position like an error.
   */
  notes?: ConfigIssue[];
}
