import type { Report } from '../report/types';
import type { DeployRecord } from './kpi';

export interface LogLine {
  time: string;
  event?: 'deploy' | 'rollback';
  release: string;
  stage?: string;
  host: string;
  result?: string;
  runId?: string;
  durationMs?: number;
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

/**
 * One record per (host, release, run) from release-log lines: deployed → success (duration from its first
 * "started"), rolled_back → rolled_back (rollback time from the last failure before it), failed only → failed.
 * A deploy with only a "started" line (still running, or killed) is left out.
 */
export function recordsFromReleaseLogs(lines: LogLine[]): DeployRecord[] {
  const groups = new Map<string, LogLine[]>();
  for (const l of lines) {
    const key = `${l.host}\u0000${l.release}\u0000${l.runId ?? l.time.slice(0, 13)}`;
    groups.set(key, [...(groups.get(key) ?? []), l]);
  }
  const out: DeployRecord[] = [];
  for (const g of groups.values()) {
    g.sort((a, b) => a.time.localeCompare(b.time));
    const started = g.find((l) => l.result === 'started');
    const deployed = g.find((l) => l.result === 'deployed');
    const rolled = g.find((l) => l.event === 'rollback');
    const failed = g.filter((l) => l.result === 'failed');
    const base = {
      environment: g[0].stage ?? 'default',
      release: g[0].release,
      host: g[0].host,
      runId: g[0].runId,
    };
    if (rolled) {
      const before = failed[failed.length - 1] ?? started;
      out.push({
        ...base,
        time: rolled.time,
        failedAt: failed[0]?.time ?? rolled.time,
        outcome: 'rolled_back',
        rollbackMs: before ? Date.parse(rolled.time) - Date.parse(before.time) : undefined,
      });
    } else if (deployed) {
      out.push({
        ...base,
        time: deployed.time,
        outcome: 'success',
        durationMs:
          deployed.durationMs ?? (started ? Date.parse(deployed.time) - Date.parse(started.time) : undefined),
      });
    } else if (failed.length) {
      out.push({ ...base, time: failed[failed.length - 1].time, outcome: 'failed' });
    }
  }
  return out;
}

/** One record per stage of each report. */
export function recordsFromReports(reports: Report[]): DeployRecord[] {
  return reports.flatMap((r) =>
    r.phases
      .filter((p) => p.kind === 'stage' && p.status !== 'skipped')
      .map((p) => {
        const rollbacks = r.hosts
          .filter((h) => h.stage === p.name && h.rollback)
          .map((h) => h.rollback!.durationMs);
        return {
          time: r.finishedAt,
          environment: p.name,
          release: r.release.id,
          runId: r.run.id,
          outcome:
            p.status === 'ok'
              ? ('success' as const)
              : p.status === 'rolled_back'
                ? ('rolled_back' as const)
                : ('failed' as const),
          durationMs: p.durationMs,
          rollbackMs: rollbacks.length ? Math.max(...rollbacks) : undefined,
        };
      }),
  );
}
