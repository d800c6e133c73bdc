import type { PhaseReport, Report } from '../report/types';
import type { DeployRecord } from './kpi';

export interface LogLine {
  time: string;
  event?: 'deploy' | 'rollback';
  release: string;
  stage?: string;
  host: string;
  result?: string;
  token?: string; // the run token: the same on every line one run writes, on every host (CLI runs too)
  runId?: string;
  durationMs?: number; // on `deployed` lines: the host's deploy time; on rollback lines: the rollback's
}

/** Parses a host's releases.log (JSON lines); lines that are not valid records are counted, not fatal. */
export function parseReleaseLog(text: string, host: string): { lines: LogLine[]; corrupt: number } {
  const lines: LogLine[] = [];
  let corrupt = 0;
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    try {
      const l = JSON.parse(raw) as Partial<LogLine>;
      if (typeof l.time !== 'string' || typeof l.release !== 'string' || Number.isNaN(Date.parse(l.time)))
        throw new Error('not a record');
      lines.push({ ...l, host: l.host ?? host } as LogLine);
    } catch {
      corrupt++;
    }
  }
  return { lines, corrupt };
}

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString();
const max = (xs: number[]) => (xs.length ? Math.max(...xs) : undefined);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

/**
 * One record per deploy of a stage: all release-log lines of one run (its token) for that stage, on every host of
 * the stage. A 3-host stage deployed once is one deploy, not three.
 *
 * - Some host was rolled back: `rolled_back` when every host of the group was (a rollback line is only written
 *   once the rollback worked), else `failed` (a rollback failed, the host is left in between).
 * - Otherwise a host failed and never got to `deployed`: `failed`.
 * - Otherwise a `deployed` line: `success`; the deploy time is the slowest host's `durationMs` (the stage waits
 *   for all of them), or its first `started` to `deployed` in logs written before durationMs existed.
 * - Only `started` lines: still running (or killed), left out.
 *
 * Rollback time is the slowest host's rollback `durationMs`. The incident opens at the first failure; a stage
 * withdrawn because a later stage failed has no failure of its own, so its rollback's start stands in.
 * Lines written before run tokens existed are grouped by run id, or by host, release and hour as before. Rollback
 * lines alone under a token of their own come from a later job of the same workflow (each job has its own token):
 * they turn the deploy they undo into a rolled-back one instead of counting as a deploy themselves.
 */
export function recordsFromReleaseLogs(lines: LogLine[]): DeployRecord[] {
  const groups = new Map<string, LogLine[]>();
  for (const l of lines) {
    const stage = l.stage ?? 'default';
    const run = l.token ?? l.runId ?? `${l.host}\u0000${l.release}\u0000${l.time.slice(0, 13)}`;
    const key = `${stage}\u0000${run}`;
    groups.set(key, [...(groups.get(key) ?? []), l]);
  }
  const out: DeployRecord[] = [];
  const laterRollbacks: LogLine[][] = [];
  for (const g of groups.values()) {
    g.sort((a, b) => a.time.localeCompare(b.time));
    // Only rollback lines: a later job of the workflow (its own token) rolled back what an earlier one deployed.
    if (g.every((l) => l.event === 'rollback')) {
      laterRollbacks.push(g);
      continue;
    }
    const byHost = new Map<string, LogLine[]>();
    for (const l of g) byHost.set(l.host, [...(byHost.get(l.host) ?? []), l]);
    const hosts = [...byHost.entries()].map(([host, ls]) => ({
      host,
      started: ls.find((l) => l.result === 'started'),
      deployed: ls.find((l) => l.result === 'deployed'),
      failed: ls.filter((l) => l.result === 'failed'),
      rollback: ls.find((l) => l.event === 'rollback'),
    }));
    const base = {
      stage: g[0].stage ?? 'default',
      release: g[0].release,
      token: g[0].token,
      runId: g[0].runId,
      hosts: hosts.map((h) => h.host).sort(),
      time: g[g.length - 1].time,
    };
    const firstFailure = g.find((l) => l.result === 'failed')?.time;
    const rollbacks = hosts.flatMap((h) => (h.rollback ? [h.rollback] : []));
    if (rollbacks.length) {
      const rollbackStart = Math.min(...rollbacks.map((r) => ms(r.time) - (num(r.durationMs) ?? 0)));
      out.push({
        ...base,
        outcome: hosts.every((h) => h.rollback) ? 'rolled_back' : 'failed',
        failedAt: firstFailure ?? iso(rollbackStart),
        rollbackMs: max(rollbacks.flatMap((r) => (num(r.durationMs) === undefined ? [] : [r.durationMs!]))),
      });
    } else if (hosts.some((h) => h.failed.length && !h.deployed)) {
      out.push({ ...base, outcome: 'failed', failedAt: firstFailure });
    } else if (hosts.some((h) => h.deployed)) {
      const durations = hosts.flatMap((h) => {
        if (!h.deployed) return [];
        const d =
          num(h.deployed.durationMs) ?? (h.started ? ms(h.deployed.time) - ms(h.started.time) : undefined);
        return d === undefined ? [] : [d];
      });
      out.push({ ...base, outcome: 'success', durationMs: max(durations) });
    }
  }
  for (const g of laterRollbacks) withdraw(out, g);
  return out;
}

/** Marks the deploy a later job rolled back (same stage and release, the latest one before it) as rolled back. */
function withdraw(records: DeployRecord[], rollbacks: LogLine[]): void {
  const first = rollbacks[0];
  const stage = first.stage ?? 'default';
  const target = records
    .filter((r) => r.stage === stage && r.release === first.release && ms(r.time) <= ms(first.time))
    .sort((a, b) => ms(b.time) - ms(a.time))[0];
  if (!target || target.outcome !== 'success') return;
  const hosts = new Set(rollbacks.map((l) => l.host));
  const start = Math.min(...rollbacks.map((r) => ms(r.time) - (num(r.durationMs) ?? 0)));
  Object.assign(target, {
    outcome: target.hosts.every((h) => hosts.has(h)) ? 'rolled_back' : 'failed',
    time: rollbacks[rollbacks.length - 1].time,
    failedAt: iso(start),
    durationMs: undefined,
    rollbackMs: max(rollbacks.flatMap((r) => (num(r.durationMs) === undefined ? [] : [r.durationMs!]))),
  });
}

const phaseEnd = (p: PhaseReport) => ms(p.startedAt) + p.durationMs;

/**
 * One record per stage of a report. A stage that passed but was rolled back afterwards (a later stage failed)
 * is not a success: the lead marks it `rolled_back`, and reports written before that are recognised by the
 * rollback records of the stage's hosts. A stage whose hosts were all rolled back cleanly is `rolled_back`; a
 * failed rollback, or a failure with nothing rolled back, is `failed`.
 */
export function recordsFromReport(r: Report): DeployRecord[] {
  const stages = r.phases.filter((p) => p.kind === 'stage' && p.status !== 'skipped');
  return stages.map((p) => {
    const finals = r.hosts.filter((h) => h.stage === p.name);
    const rolled = finals.filter((h) => h.rollback);
    const rollbackMs = max(rolled.map((h) => h.rollback!.durationMs));
    const base = {
      stage: p.name,
      release: r.release.id,
      runId: r.run.id,
      hosts: (finals.length ? finals.map((h) => h.host) : p.hosts.map((h) => h.host)).sort(),
    };
    if (p.status === 'ok' && rolled.length === 0)
      return { ...base, time: iso(phaseEnd(p)), outcome: 'success' as const, durationMs: p.durationMs };
    // When it went wrong: its own failure, or the failure of a later phase that made it roll back.
    const cause =
      p.status === 'failed'
        ? p
        : r.phases.find((x) => x.status === 'failed' && ms(x.startedAt) >= ms(p.startedAt) && x !== p);
    const cleanly = rolled.length > 0 && rolled.every((h) => h.rollback!.ok);
    return {
      ...base,
      time: r.finishedAt,
      outcome: cleanly ? ('rolled_back' as const) : ('failed' as const),
      failedAt: cause ? iso(phaseEnd(cause)) : r.finishedAt,
      rollbackMs,
    };
  });
}

export function recordsFromReports(reports: Report[]): DeployRecord[] {
  return reports.flatMap(recordsFromReport);
}
