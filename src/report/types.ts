import type { ErrorClass } from '../errors';
import type { ReleaseReport } from '../release/types';

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
  /** Not attempted: the run was told not to roll back (rollback-on-failure: false); the target is left as it is. */
  skipped?: boolean;
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
  /** Not run: the commit passed them before (`--skip-tests`); outputTail says where and when. */
  skipped?: boolean;
  junit?: { tests: number; passed: number; failures: number; errors: number; skipped: number };
}

export interface PhaseReport {
  name: string; // preflight | secrets | snapshot | <stage> | verify
  kind: 'preflight' | 'secrets' | 'snapshot' | 'stage' | 'verify' | 'rollback';
  status: PhaseStatus;
  startedAt: string;
  durationMs: number;
  hosts: HostPhaseReport[];
  tests?: TestsReport;
  error?: ErrorInfo;
}

/** One wave of a fleet stage's rollout: what it touched and what the failure budget decided after it. */
export interface WaveReport {
  stage: string;
  /** 1 = the canary. */
  index: number;
  targets: string[];
  ok: number;
  failed: number;
  /** Targets of the wave never started (the budget stopped the rollout, the window closed, a cancel). */
  notStarted: number;
  startedAt: string;
  durationMs: number;
  budget?: {
    maxFail?: number;
    maxFailPercentage?: number;
    /** Failed share of the wave, 0..1. */
    failRate: number;
    exceeded: boolean;
    /** Why the rollout stopped here. */
    decision?: string;
    policy?: string;
    /** Which budget was passed: the wave's own, or the stage's over all waves so far. */
    scope?: 'wave' | 'overall';
  };
  /** Sent when this wave passed the budget. */
  escalation?: EscalationReport;
  /** Targets of the stage left untouched when the rollout stopped after this wave. */
  left?: string[];
}

/** The failure budget of a fleet stage was passed: who was told, with what. */
export interface EscalationReport {
  stage: string;
  wave: number;
  reason: string;
  /** Failed share of the stage's targets so far, 0..1. */
  rate: number;
  classes: Record<string, number>;
  firstFailing: string[];
  /** Filled in by the notifiers: where the escalation went, and what failed sending it. */
  sent?: boolean;
  channels?: string[];
  error?: string;
}

export interface HostFinalState {
  host: string;
  kind?: 'ssh' | 'vercel' | 'runner';
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
    | 'needs-attention'
    | 'window-ignored'
    | 'release-tagged'
    | 'changelog-written'
    | 'tests-skipped';
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
  /** Fleet stages: one entry per wave that started. */
  waves?: WaveReport[];
  /** The failure budget of a fleet stage was passed. */
  escalation?: EscalationReport;
  /** Targets this run was to deploy but never started: left for the next run (or the next window). */
  left?: { targets: string[]; reason: string };
  /** At least one target needs a human (a rollback failed, or its state is unknown). */
  needsAttention?: string[];
  /** Targets left on a failed release because the run was told not to roll back (rollback-on-failure: false). */
  notRolledBack?: string[];
  /** The release steps: up-to-date check, tag, changelog. They never change the deploy's status. */
  releaseSteps?: ReleaseReport;
}
