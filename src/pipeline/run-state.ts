import type { HostConfig } from '../config/types';
import type { AuditRecord, DeployStatus, ErrorInfo, PhaseReport, RollbackReport } from '../report/types';
import type { RunContext } from '../run/context';

/** What the run knows about one host; the rollback decisions are made from these fields only. */
export interface HostRun {
  host: HostConfig;
  stage?: string;
  before: string | null; // the rollback target
  startCurrent: string | null; // what `current` named when pre-flight looked
  /** Pre-flight started on this host, so it may hold our lock even if pre-flight did not finish. */
  attempted: boolean;
  locked: boolean;
  releaseComplete: boolean;
  touched: boolean; // this run moved `current` (or may have: the host dropped or the run was cancelled mid-step)
  envWritten: boolean; // this run's secrets phase replaced the env file
  onNew: boolean; // `current` names this run's release
  /** The host is on the new release but no earlier job recorded where a rollback would go. */
  noRollbackPoint?: boolean;
  rollback?: RollbackReport;
  infraSnapshot?: string;
  /** A detached rollback on the host owns the lock now and releases it when it ends. */
  lockHandedOver?: boolean;
  /** The heartbeat found the lock in other hands (released by an operator, or taken over). */
  lockLost?: boolean;
}

/** The mutable state of one run, passed to each phase; nothing of it is global. */
export interface RunState {
  readonly ctx: RunContext;
  readonly hosts: Map<string, HostRun>;
  readonly phases: PhaseReport[];
  readonly audit: AuditRecord[];
  lastPhase: string;
  rollbackFailed: boolean;
  /** Set when the run is cancelled: every cleanup step must be done by then (the runner kills us ~7.5 s later). */
  cancelDeadline?: number;
  /** Tests inject a deterministic random for backoff jitter. */
  random?: () => number;
}

/** Thrown inside the pipeline to stop it; carries the status the failure rules decided. */
export class Stop extends Error {
  constructor(
    readonly status: DeployStatus,
    readonly info: ErrorInfo,
  ) {
    super(info.message);
  }
}

export function hostRun(state: RunState, name: string): HostRun {
  const h = state.hosts.get(name);
  if (!h) throw new Error(`internal: host ${name} is not part of this run`);
  return h;
}

export function record(state: RunState, action: AuditRecord['action'], host: string, detail?: string): void {
  state.audit.push({ time: new Date().toISOString(), action, host, detail });
}

/**
 * A time limit for cleanup work: the normal one, or what is left of the cancellation budget minus `reserveMs`
 * (kept for the steps after it, such as releasing locks).
 */
export function cleanupTimeout(state: RunState, normalMs: number, reserveMs = 0): number {
  if (state.cancelDeadline === undefined) return normalMs;
  return Math.max(250, Math.min(normalMs, state.cancelDeadline - Date.now() - reserveMs));
}
