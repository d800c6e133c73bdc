import type { TargetConfig } from '../config/types';
import type { HealthSubject } from '../health/subject';
import type { HealthReport, StepReport } from '../report/types';

export type { HealthSubject };

/**
 * The one interface the pipeline talks to. A target is something a release is deployed to: an SSH host (release
 * folders and a `current` link), a Vercel project (deployments through its API), or a platform driven by commands
 * on the runner (CDK, kubectl, helm, terraform). The pipeline decides what happens when (phases, waves, retries,
 * failure rules); a target only knows how to do each thing to itself, and reports what it did.
 *
 * Versions are opaque strings chosen by the target: a release id on an SSH host, a deployment id on Vercel, what
 * the `current` command printed on a runner platform. `null` means nothing is deployed. The pipeline compares
 * versions only through `onNew` flags the target computes, never by their text.
 */

export type TargetKind = TargetConfig['kind'];

/** Steps a target ran for one call, for the report: each with its exit code, duration and output tail. */
export interface StepsOutcome {
  ok: boolean;
  steps: StepReport[];
  failed?: StepReport;
}

export interface PreflightOutcome {
  /** The version live now. */
  current: string | null;
  /** `current` is this run's release already (a later job of the workflow, or a re-run). */
  onNew: boolean;
  /** This run's release is already prepared on the target (uploaded, built), so deploy can skip preparing it. */
  prepared: boolean;
  lock: 'acquired' | 'ours' | 'taken-over' | 'none';
  steps?: StepsOutcome;
  /** Figures for the report (free bytes, lock wait, ...). */
  detail?: Record<string, string | number | boolean | null>;
}

export interface SecretsOutcome {
  state: 'unchanged' | 'written';
  /** Key names whose values changed; never values. */
  changed: string[];
  steps?: StepsOutcome;
}

export interface RollbackPoint {
  release: string;
  /** Where a rollback of `release` returns to: a version, or null (nothing was deployed before). */
  previous: string | null;
  /** An infrastructure snapshot taken before the release (VM, filesystem, database backup). */
  infraSnapshot?: string;
  /**
   * The version the target reported right after this release was deployed (a runner platform: what `current`
   * printed), so a later job can tell the release is live where versions are not release ids.
   */
  deployed?: string | null;
  recordedAt: string;
  runId?: string;
  token?: string;
}

export interface SnapshotOutcome {
  /** The rollback point now recorded for this run's release; undefined when none exists (see PreflightOutcome.onNew). */
  point?: RollbackPoint;
  steps?: StepsOutcome;
  warnings?: string[];
}

export interface DeployOptions {
  stage: string;
  /** The version a rollback would return to. */
  previous: string | null;
  /** From pre-flight: skip preparing the release again. */
  prepared: boolean;
  /**
   * Checks the new release before it takes traffic, for targets where a release can be reached before it is live
   * (a Vercel deployment's own URL before promotion). Throws (a HealthFailed) when the release is unhealthy; the
   * target then leaves the live version as it is. SSH hosts switch first and are checked after.
   */
  checkBeforeActivate(subject: HealthSubject): Promise<HealthReport[]>;
}

export interface DeployOutcome extends StepsOutcome {
  /** The live version was changed (or may have been: a lost connection mid-switch counts as switched). */
  switched: boolean;
  /** The version now live, when the target knows it (a Vercel deployment id, the runner's `current`). */
  version?: string | null;
  /** Health reports of checkBeforeActivate, when it ran. */
  health?: HealthReport[];
  detail?: Record<string, string | number | boolean | null>;
}

export interface RollbackOptions {
  stage: string;
  /** The version to return to; null = nothing was deployed before: stop the stack / remove it. */
  to: string | null;
  infraSnapshot?: string;
  /**
   * The version being rolled back from, when it is not this run's release (a manual `rollback`): the target's
   * bookkeeping for that version (its saved env file, its log lines) is used.
   */
  from?: string;
  /**
   * The run was cancelled: the runner kills us within seconds. Targets that can, hand the rollback to the
   * target's side (a detached process on an SSH host) and wait only `handOverWaitMs` for it.
   */
  handOverWaitMs?: number;
}

export interface RollbackOutcome extends StepsOutcome {
  /** The infrastructure snapshot rolled back too. */
  infraSnapshot?: string;
  /** Handed over and still running on the target when the wait ended; it releases the lock itself. */
  pending?: boolean;
  /** Handed over: the old version was started but not health-checked. */
  handedOver?: boolean;
  /** Where the handed-over rollback writes its log. */
  logFile?: string;
  /** Audit lines for the report (what the infrastructure provider did). */
  actions?: string[];
}

/** A target's state for `status` and `releases`, read without changing anything. */
export interface TargetStatus {
  /** The target's name (called host in reports, for every kind). */
  host: string;
  kind: TargetKind;
  reachable: boolean;
  error?: string;
  /** Nothing was ever deployed here. */
  empty?: boolean;
  current?: string | null;
  /** What a rollback of the current release returns to. */
  previous?: string | null;
  lock?: LockState;
  /** The last release-log lines, oldest first. */
  recent?: Record<string, unknown>[];
  rollbackPoints?: RollbackPoint[];
  /** Versions a rollback can return to, newest first. */
  releases?: string[];
  /** Infrastructure snapshots the command provider made and has not deleted, oldest first (SSH hosts). */
  snapshots?: { name: string; time: string; release?: string }[];
  /** Kind-specific extras (domains, the platform's own view, ...). */
  extra?: Record<string, unknown>;
  /** A record that a human must look at this target (a failed rollback); cleared by a later deploy or rollback. */
  needsAttention?: Record<string, unknown>;
}

/** What a rollback by hand must know about a target. */
export interface RollbackFacts {
  current: string | null;
  /** What a rollback of the current release returns to. */
  previous: string | null;
  /** Versions on the target a rollback can return to, in no particular order. */
  releases: string[];
}

export interface LockOwner {
  token: string;
  runId?: string;
  runUrl?: string;
  actor?: string;
  commit: string;
  release: string;
  phase: string;
  host: string;
  startedAt: string;
  heartbeatAt: string;
}

export type LockState =
  | { held: false }
  | {
      held: true;
      /** The owner record; null when none is readable. */
      owner: LockOwner | null;
      heartbeatAgeSeconds: number;
      stale: boolean;
      staleAfterSeconds: number;
    };

export interface OperatorLockRelease {
  host: string;
  outcome: 'released' | 'free' | 'refused-live' | 'changed' | 'error';
  lock?: LockState;
  error?: string;
}

export interface Target {
  readonly name: string;
  readonly kind: TargetKind;
  readonly config: TargetConfig;

  /** Checks the target can take a deploy and takes its deploy lock last, only if the checks passed. */
  preflight(phase: string): Promise<PreflightOutcome>;
  /** Refreshes the lock's heartbeat; false when the lock is no longer ours (released or taken over). */
  heartbeat(): Promise<boolean>;
  /** Releases the lock if this run holds it; another run's lock is never touched. */
  releaseLock(opts?: { timeoutMs?: number }): Promise<boolean>;

  /** Writes the target's env file from secret values (SSH hosts); targets without one do not implement it. */
  writeSecrets?(file: string, content: string): Promise<SecretsOutcome>;
  /** Puts back the env file this run replaced. */
  restoreSecrets?(opts?: { timeoutMs?: number }): Promise<StepsOutcome | undefined>;

  /**
   * Records where a rollback of this run's release returns to, after taking the infrastructure snapshot if one is
   * configured. `previous` undefined: the target already runs this release; keep the point an earlier job wrote.
   */
  snapshot(previous: string | null | undefined, opts: { infra: boolean }): Promise<SnapshotOutcome>;
  /** The rollback point an earlier job recorded for this run's release. */
  readRollbackPoint(): Promise<RollbackPoint | undefined>;

  /** Prepares and activates this run's release. Resolves with the steps for any outcome; rejects only when the target could not be asked. */
  deploy(opts: DeployOptions): Promise<DeployOutcome>;
  /** Health-check context for `version` (default: this run's release) in `stage`. */
  healthSubject(stage: string, version?: string | null): HealthSubject;
  /** Returns the target to `opts.to`. */
  rollback(opts: RollbackOptions): Promise<RollbackOutcome>;
  /** Bookkeeping once a stage is live on this target: release log, pruning old releases and snapshots. */
  settle(opts: {
    stage: string;
    previous: string | null;
    unchanged: boolean;
    durationMs?: number;
    /** The infrastructure snapshot this release's rollback needs: never pruned. */
    infraSnapshot?: string;
  }): Promise<void>;
  /**
   * Records where the target lives that a human must look at it (a rollback that failed); `status` shows the
   * record until a later deploy or rollback of the target clears it.
   */
  markNeedsAttention(record: Record<string, unknown>, opts?: { timeoutMs?: number }): Promise<void>;
  /** Appends a line to the target's release log (the record later jobs and `history` read). */
  appendLog(entry: Record<string, unknown>, opts?: { timeoutMs?: number }): Promise<void>;
  /** Reads back what is live, for the final report. */
  readCurrent(opts?: { timeoutMs?: number }): Promise<{ version: string | null; onNew: boolean }>;

  /** Runs the stage's tests on the target itself (SSH hosts: in the release directory). */
  runTests?(
    command: string,
    opts: { stage: string; timeoutMs: number; junit?: string },
  ): Promise<{
    exitCode: number | null;
    output: string;
    junitXml?: string;
    junitMissing?: string;
  }>;

  /** Stops everything this run still runs on or for the target (remote commands, local processes, builds). */
  kill(): Promise<void>;
  /** Gives back what the target holds open (a connection); later calls open it again. */
  close(): Promise<void>;

  /** Operator view: state, lock, recent releases; changes nothing. */
  status(): Promise<TargetStatus>;
  /** Only what a rollback by hand needs, where the target reads it cheaper than the whole status. */
  rollbackFacts?(): Promise<RollbackFacts>;
  /** Operator override of the deploy lock (`lock release`), audited where the lock lives. */
  releaseLockAsOperator(opts: { operator: string; force: boolean }): Promise<OperatorLockRelease>;
  /** The whole release log, for `history`. */
  readReleaseLog(): Promise<string>;
}
