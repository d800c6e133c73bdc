import type {
  ErrorInfo,
  HostFinalState,
  HostPhaseReport,
  PhaseReport,
  Report,
  RollbackReport,
} from './types';

/**
 * What the HTML page shows, derived from a report: one row per target, the failures, the waves. Reports come
 * from files written by older and newer versions, so everything optional is read defensively and a field the
 * renderer does not know yet is simply not shown.
 */

/**
 * Rollout waves as the page expects them in a report's optional `waves` list (one entry per wave per stage).
 * Every field but `stage` and `index` may be absent.
 */
export interface WaveReport {
  stage: string;
  /** 1 = the first wave (the canary). */
  index: number;
  /** The wave's targets, or just how many there were. */
  targets: string[] | number;
  ok?: number;
  failed?: number;
  /** Targets of the wave that never started (the rollout stopped, or the window closed). */
  notStarted?: number;
  startedAt?: string;
  durationMs?: number;
  budget?: {
    maxFail?: number;
    maxFailPercentage?: number;
    /** Failed share after this wave, 0..1: of the wave, or overall when `scope` says so. */
    failRate?: number;
    scope?: 'wave' | 'overall';
    exceeded?: boolean;
    /** What the engine did: `continue`, `stop`, ... */
    decision?: string;
    /** The rollback policy applied when the budget was passed: `failed`, `wave`, `all`. */
    policy?: string;
  };
  escalation?: {
    sent?: boolean;
    rate?: number;
    classes?: Record<string, number>;
    firstFailing?: string[];
    channels?: string[];
    error?: string;
  };
  /** Targets left for the next window, or not started because the rollout stopped. */
  left?: string[];
}

/** Fields newer reports may carry on top of `Report`; all optional. */
export interface ReportExtras {
  waves?: WaveReport[];
}

export type TargetResult =
  | 'ok'
  | 'unchanged'
  | 'failed'
  | 'rolled_back'
  | 'rollback_failed'
  | 'rollback_pending'
  | 'unknown'
  | 'untouched';

export const RESULT_LABEL: Record<TargetResult, string> = {
  ok: 'on new release',
  unchanged: 'unchanged',
  failed: 'failed',
  rolled_back: 'rolled back',
  rollback_failed: 'ROLLBACK FAILED',
  rollback_pending: 'rollback still running',
  unknown: 'state unknown',
  untouched: 'not deployed',
};

/** Results that need a person to look: everything but a target that ended where it should. */
export const ATTENTION: ReadonlySet<TargetResult> = new Set([
  'failed',
  'rolled_back',
  'rollback_failed',
  'rollback_pending',
  'unknown',
]);

export interface TargetRow {
  name: string;
  kind?: string;
  stage?: string;
  before: string | null;
  after: string | null;
  state: string;
  result: TargetResult;
  failedPhase?: string;
  error?: ErrorInfo;
  attempts: number;
  checksOk: number;
  checks: number;
  rollback?: RollbackReport;
  durationMs: number;
}

export interface Failure {
  target: string;
  phase: string;
  /** What failed: the target's work in the phase, its rollback, the tests, or the phase as a whole. */
  what: 'deploy' | 'rollback' | 'tests' | 'phase';
  class: string;
  message: string;
  attempts?: number;
  entry?: HostPhaseReport;
}

const arr = <T>(v: T[] | undefined | null): T[] => (Array.isArray(v) ? v : []);
const kindOf = (v: unknown): string | undefined =>
  typeof (v as { kind?: unknown })?.kind === 'string' ? (v as { kind: string }).kind : undefined;

/** A host entry that only records a rollback (a later phase rolled this target back): no attempt of its own. */
export const isRollbackOnly = (e: HostPhaseReport) => arr(e.attempts).length === 0 && !!e.rollback && e.ok;

export function phasesOf(r: Report): PhaseReport[] {
  return arr(r.phases);
}

/** Every target of the run: the final states first, then any that only appear in a phase (left out early). */
export function targetRows(r: Report): TargetRow[] {
  const finals = new Map<string, HostFinalState>();
  for (const f of arr(r.hosts)) if (f && typeof f.host === 'string') finals.set(f.host, f);
  const entries = new Map<string, { phase: PhaseReport; entry: HostPhaseReport }[]>();
  for (const p of phasesOf(r))
    for (const e of arr(p.hosts)) {
      if (!e || typeof e.host !== 'string') continue;
      entries.set(e.host, [...(entries.get(e.host) ?? []), { phase: p, entry: e }]);
    }
  const names = [...finals.keys(), ...[...entries.keys()].filter((n) => !finals.has(n))];
  return names.map((name) => {
    const f = finals.get(name);
    const es = entries.get(name) ?? [];
    const work = es.filter((x) => !isRollbackOnly(x.entry));
    const failed = work.find((x) => !x.entry.ok);
    const rollback = f?.rollback ?? [...es].reverse().find((x) => x.entry.rollback)?.entry.rollback;
    const health = es.flatMap((x) => arr(x.entry.health));
    const state = f?.state ?? 'unknown';
    let result: TargetResult;
    if (rollback && !rollback.ok) result = rollback.pending ? 'rollback_pending' : 'rollback_failed';
    else if (rollback) result = 'rolled_back';
    else if (failed) result = 'failed';
    else if (state === 'unknown') result = 'unknown';
    else if (state === 'new') result = 'ok';
    else if (state === 'unchanged') result = 'unchanged';
    else result = 'untouched';
    return {
      name,
      kind: kindOf(f) ?? es.map((x) => kindOf(x.entry)).find(Boolean),
      stage: f?.stage,
      before: f?.before ?? null,
      after: f?.after ?? null,
      state,
      result,
      failedPhase: failed?.phase.name,
      error: failed?.entry.error ?? (rollback && !rollback.ok ? rollback.error : undefined),
      attempts: Math.max(
        0,
        ...work.filter((x) => x.phase.kind === 'stage').map((x) => arr(x.entry.attempts).length),
      ),
      checksOk: health.filter((h) => h.ok).length,
      checks: health.length,
      rollback,
      durationMs: work.reduce((s, x) => s + (Number(x.entry.durationMs) || 0), 0),
    };
  });
}

/** Everything that failed, once each: a target's work in a phase, a rollback, the tests, a phase-wide error. */
export function failures(r: Report): Failure[] {
  const out: Failure[] = [];
  const seenRollback = new Set<string>();
  for (const p of phasesOf(r)) {
    let attributed = false;
    for (const e of arr(p.hosts)) {
      if (!e.ok && !isRollbackOnly(e)) {
        attributed = true;
        out.push({
          target: e.host,
          phase: p.name,
          what: 'deploy',
          class: e.error?.class ?? 'internal',
          message: e.error?.message ?? 'failed (no error recorded)',
          attempts: arr(e.attempts).length,
          entry: e,
        });
      }
      if (e.rollback && !e.rollback.ok && !seenRollback.has(e.host)) {
        seenRollback.add(e.host);
        out.push(rollbackFailure(e.host, p.name, e.rollback));
      }
    }
    if (p.tests && !p.tests.ok) {
      attributed = true;
      out.push({
        target: p.tests.on,
        phase: p.name,
        what: 'tests',
        class: 'tests-failed',
        message: `tests exited ${p.tests.exitCode ?? '(no exit code)'}${junitText(p.tests.junit)}`,
      });
    }
    if (p.status === 'failed' && p.error && !attributed)
      out.push({
        target: p.error.host ?? '—',
        phase: p.name,
        what: 'phase',
        class: p.error.class,
        message: p.error.message,
      });
  }
  for (const f of arr(r.hosts))
    if (f.rollback && !f.rollback.ok && !seenRollback.has(f.host)) {
      seenRollback.add(f.host);
      out.push(rollbackFailure(f.host, f.stage ?? '—', f.rollback));
    }
  return out;
}

function rollbackFailure(target: string, phase: string, rb: RollbackReport): Failure {
  return {
    target,
    phase,
    what: 'rollback',
    class: rb.error?.class ?? 'internal',
    message:
      (rb.pending ? 'rollback still running on the target: ' : '') +
      (rb.error?.message ?? `rollback to ${rb.to ?? '(nothing)'} did not finish`),
  };
}

const junitText = (j: { passed: number; failures: number; errors: number; skipped: number } | undefined) =>
  j ? ` (${j.passed} passed, ${j.failures + j.errors} failed, ${j.skipped} skipped)` : '';

/** Counts by key, largest first, then by name. */
export function countBy<T>(xs: T[], key: (x: T) => string | undefined): [string, number][] {
  const m = new Map<string, number>();
  for (const x of xs) {
    const k = key(x);
    if (k !== undefined) m.set(k, (m.get(k) ?? 0) + 1);
  }
  return [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** The report's waves that have at least a stage and an index; anything else in the list is ignored. */
export function wavesOf(r: Report): WaveReport[] {
  const waves = (r as unknown as ReportExtras).waves;
  if (!Array.isArray(waves)) return [];
  return waves.flatMap((w): WaveReport[] => {
    if (!w || typeof w !== 'object' || typeof w.stage !== 'string' || num(w.index) === undefined) return [];
    const targets = Array.isArray(w.targets)
      ? w.targets.filter((t): t is string => typeof t === 'string')
      : (num(w.targets) ?? 0);
    const b = w.budget && typeof w.budget === 'object' ? w.budget : undefined;
    const e = w.escalation && typeof w.escalation === 'object' ? w.escalation : undefined;
    return [
      {
        stage: w.stage,
        index: w.index,
        targets,
        ok: num(w.ok),
        failed: num(w.failed),
        notStarted: num(w.notStarted),
        startedAt: str(w.startedAt),
        durationMs: num(w.durationMs),
        budget: b && {
          maxFail: num(b.maxFail),
          maxFailPercentage: num(b.maxFailPercentage),
          failRate: num(b.failRate),
          scope: b.scope === 'overall' ? 'overall' : b.scope === 'wave' ? 'wave' : undefined,
          exceeded: typeof b.exceeded === 'boolean' ? b.exceeded : undefined,
          decision: str(b.decision),
          policy: str(b.policy),
        },
        escalation: e && {
          sent: typeof e.sent === 'boolean' ? e.sent : undefined,
          rate: num(e.rate),
          classes:
            e.classes && typeof e.classes === 'object'
              ? Object.fromEntries(
                  Object.entries(e.classes).filter((kv): kv is [string, number] => num(kv[1]) !== undefined),
                )
              : undefined,
          firstFailing: Array.isArray(e.firstFailing)
            ? e.firstFailing.filter((t): t is string => typeof t === 'string')
            : undefined,
          channels: Array.isArray(e.channels)
            ? e.channels.filter((t): t is string => typeof t === 'string')
            : undefined,
          error: str(e.error),
        },
        left: Array.isArray(w.left) ? w.left.filter((t): t is string => typeof t === 'string') : undefined,
      },
    ];
  });
}

export const waveSize = (w: WaveReport) => (Array.isArray(w.targets) ? w.targets.length : w.targets);
