import type {
  AuditRecord,
  DeployStatus,
  ErrorInfo,
  EscalationReport,
  PhaseReport,
  RollbackReport,
  TestsReport,
  WaveReport,
} from '../report/types';
import type { RunContext } from '../run/context';
import type { TargetSet } from '../targets';
import type { Target } from '../targets/target';

/** What the run knows about one target; the rollback decisions are made from these fields only. */
export interface TargetRun {
  target: Target;
  stage?: string;
  /** The rollback target: the version to return to. */
  before: string | null;
  /** What was live when pre-flight looked. */
  startCurrent: string | null;
  /** That was this run's release already (an earlier job or try deployed it). */
  startedOnNew: boolean;
  /** The version this run's release has on the target, once known (a Vercel deployment id, a release id). */
  newVersion?: string;
  /** Pre-flight started on this target, so it may hold our lock even if pre-flight did not finish. */
  attempted: boolean;
  locked: boolean;
  /** The release is already prepared on the target (uploaded), so deploy skips that. */
  prepared: boolean;
  /** This run changed what is live (or may have: the target dropped or the run was cancelled mid-step). */
  touched: boolean;
  /** This run's secrets phase replaced the env file. */
  envWritten: boolean;
  /** What is live is this run's release. */
  onNew: boolean;
  /** Live on the new release, but no earlier job recorded where a rollback would go. */
  noRollbackPoint?: boolean;
  rollback?: RollbackReport;
  infraSnapshot?: string;
  /** A detached rollback on the target owns the lock now and releases it when it ends. */
  lockHandedOver?: boolean;
  /** The heartbeat found the lock in other hands (released by an operator, or taken over). */
  lockLost?: boolean;
  /** Deployed, healthy and its bookkeeping written: what is live is known without asking the target again. */
  settled?: boolean;
  /** Its part of the run over, the target gave its lock back already (a fleet target). */
  lockReleased?: boolean;
  /** Its part of the run over, the target keeps its lock (the budget policy may still roll it back). */
  idle?: boolean;
}

/** The mutable state of one run, passed to each phase; nothing of it is global. */
export interface RunState {
  readonly ctx: RunContext;
  readonly targets: TargetSet;
  readonly runs: Map<string, TargetRun>;
  readonly phases: PhaseReport[];
  readonly audit: AuditRecord[];
  lastPhase: string;
  rollbackFailed: boolean;
  /** Set when the run is cancelled: every cleanup step must be done by then (the runner kills us ~7.5 s later). */
  cancelDeadline?: number;
  /** Tests inject a deterministic random for backoff jitter. */
  random?: () => number;
  /** Fleet stages: every wave that started. */
  waves: WaveReport[];
  escalation?: EscalationReport;
  /** Targets the run was to deploy but never started. */
  left?: { targets: string[]; reason: string };
  /** Targets failed within a fleet's budget: the run goes on, and ends as a partial success. */
  partial?: ErrorInfo;
  /** rollback-on-failure: false — failures leave targets as they are, for debugging; the report says where. */
  noRollback?: boolean;
  /** `--skip-tests`: the report each stage shows instead of running its tests (their records were found). */
  skippedTests?: Map<string, TestsReport>;
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

export function targetRun(state: RunState, name: string): TargetRun {
  const h = state.runs.get(name);
  if (!h) throw new Error(`internal: target ${name} is not part of this run`);
  return h;
}

export function record(
  state: RunState,
  action: AuditRecord['action'],
  target: string,
  detail?: string,
): void {
  state.ctx.audit(action, target, detail);
}

/**
 * A time limit for cleanup work: the normal one, or what is left of the cancellation budget minus `reserveMs`
 * (kept for the steps after it, such as releasing locks).
 */
export function cleanupTimeout(state: RunState, normalMs: number, reserveMs = 0): number {
  if (state.cancelDeadline === undefined) return normalMs;
  return Math.max(250, Math.min(normalMs, state.cancelDeadline - Date.now() - reserveMs));
}
