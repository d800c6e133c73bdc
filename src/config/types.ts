import type { ErrorClass } from '../errors';

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
  | { strategy: 'compose'; command: string; files: string[]; pull: boolean; upFlags: string[]; timeoutMs: number }
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
}

export interface HealthCheck {
  name: string;
  kind: 'http' | 'command';
  target: string;
  expect: {
    status?: number[];
    body?: string;
    json?: Record<string, string | number | boolean | null>;
    exitCode?: number;
    output?: string;
  };
  timeoutMs: number;
  intervalMs: number;
  retries: number;
  startPeriodMs: number;
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
}
