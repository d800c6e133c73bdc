import type { ErrorClass } from '../errors';
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

export interface HostConfig {
  name: string;
  address: string;
  ssh: SshSettings;
  path: string;
  deploy: DeploySettings;
  runtimeCheck: string;
  minFreeDiskBytes: number;
  keepReleases: number;
  vars: Record<string, string>;
  snapshot?: SnapshotSettings;
  envDialect: 'compose' | 'python-dotenv';
}

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

export interface StageConfig {
  name: string;
  hosts: string[];
  health: HealthCheck[];
  tests?: TestsConfig;
  retry: RetryPolicy;
  onFailure: 'rollback-stage' | 'rollback-all';
  parallel: number;
}

export interface LockSettings {
  staleAfterMs: number;
  takeoverStale: boolean;
  waitMs: number;
}

export type NotifyEvent =
  'started' | 'succeeded' | 'partial_success' | 'failed' | 'rolled_back' | 'rollback_failed';

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
  hosts: Record<string, HostConfig>;
  secrets?: { file: string; keys: string[] };
  stages: StageConfig[];
  verify: { health: HealthCheck[]; onFailure: 'rollback-all' | 'none' };
  lock: LockSettings;
  parallel: number;
  notify?: NotifySettings;
  metrics?: MetricsSettings;
  /**
   * Things that are not errors but decide whether a run can work, e.g. a host that relies on the action's ssh-key
   * input. `validate` prints them; each carries the file position like an error.
   */
  notes?: ConfigIssue[];
}
