import type { ErrorClass } from '../errors';

export type DeployStatus = 'success' | 'partial_success' | 'failed' | 'aborted' | 'rolled_back';
export type PhaseStatus = 'ok' | 'failed' | 'skipped' | 'rolled_back';
export type HostState = 'new' | 'previous' | 'unchanged' | 'none' | 'unknown';

export interface ErrorInfo {
  class: ErrorClass;
  message: string;
  phase?: string;
  host?: string;
}

export interface StepReport {
  name: string;
  command?: string; // redacted, for the record; never contains secret values
  exitCode?: number | null;
  durationMs: number;
  output?: string; // tail, redacted
  ok: boolean;
}

export interface HealthReport {
  check: string;
  ok: boolean;
  attempts: number;
  durationMs: number;
  lastError?: string;
  latency?: { lastMs: number; maxMs: number }; // per-probe latency, apart from durationMs
}

export interface AttemptReport {
  attempt: number;
  ok: boolean;
  durationMs: number;
  error?: ErrorInfo;
  delayBeforeMs?: number;
}

export interface RollbackReport {
  ok: boolean;
  to: string | null; // release id rolled back to; null = no previous release (stack stopped)
  infraSnapshot?: string; // VM/filesystem snapshot also rolled back
  durationMs: number;
  /** The old release was started but not health-checked (the run was cancelled and had no time to wait). */
  unverified?: boolean;
  /** Still running on the host (handed over when the run was cancelled); it releases the lock when it ends. */
  pending?: boolean;
  error?: ErrorInfo;
}

export interface HostPhaseReport {
  host: string;
  ok: boolean;
  durationMs: number;
  attempts: AttemptReport[];
  steps: StepReport[];
  health: HealthReport[];
  error?: ErrorInfo;
  rollback?: RollbackReport;
  detail?: Record<string, string | number | boolean | null>;
}

export interface TestsReport {
  on: string;
  ok: boolean;
  exitCode: number | null;
  durationMs: number;
  outputTail: string;
  junit?: { tests: number; passed: number; failures: number; errors: number; skipped: number };
}

export interface PhaseReport {
  name: string; // preflight | secrets | snapshot | <stage> | verify
  kind: 'preflight' | 'secrets' | 'snapshot' | 'stage' | 'verify';
  status: PhaseStatus;
  startedAt: string;
  durationMs: number;
  hosts: HostPhaseReport[];
  tests?: TestsReport;
  error?: ErrorInfo;
}

export interface HostFinalState {
  host: string;
  stage?: string;
  before: string | null; // release id current before the run
  after: string | null; // release id current at the end (as read from the host where possible)
  state: HostState;
  rollback?: RollbackReport;
}

export interface AuditRecord {
  time: string;
  action:
    | 'lock-acquired'
    | 'lock-taken-over'
    | 'lock-released'
    | 'snapshot'
    | 'deploy'
    | 'rollback'
    | 'env-restored'
    | 'needs-attention';
  host: string;
  detail?: string;
}

export interface Report {
  schema: 1;
  project: string;
  status: DeployStatus;
  phase: string; // the last phase that ran (where it stopped, when it failed)
  systemsDeployed: string[]; // hosts that end on the new release
  durationSeconds: number;
  startedAt: string;
  finishedAt: string;
  release: { id: string; commit: string; ref: string };
  run: { id?: string; url?: string; actor?: string; repository?: string };
  phasesRequested: string[];
  error?: ErrorInfo;
  phases: PhaseReport[];
  hosts: HostFinalState[];
  dryRun?: boolean;
  rollbackFailed?: boolean;
  audit: AuditRecord[]; // the same actions are appended to each host's .homelab-deploy/audit.log
}
