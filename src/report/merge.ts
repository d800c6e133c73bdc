import type { DeployStatus, ErrorInfo, HostFinalState, PhaseReport, Report } from './types';

/** One matrix entry of `homelab-deploy plan --shards N --json`; `targets` is the comma list the shard deployed. */
export interface ExpectedShard {
  shard: number;
  targets: string;
}

export interface MergeOptions {
  /**
   * The plan's shards. A shard without a report (its job crashed, was cancelled, or lost its artifact) counts as
   * failed, and its hosts appear in the merged report with state `unknown`: nobody knows what they run.
   */
  expected?: ExpectedShard[];
}

function sameRelease(reports: Report[]): void {
  const commits = [...new Set(reports.map((r) => r.release.commit))];
  if (commits.length > 1)
    throw new Error(
      `the reports are for different commits (${commits.map((c) => c.slice(0, 12)).join(', ')}); merge only the reports of one deploy`,
    );
}

const span = (reports: Report[]) => {
  const startedAt = reports.map((r) => r.startedAt).sort()[0];
  const finishedAt = reports
    .map((r) => r.finishedAt)
    .sort()
    .slice(-1)[0];
  return { startedAt, finishedAt };
};

/** Reports per expected shard, matched by the hosts they cover (reports carry no shard number). */
function missingShards(reports: Report[], expected: ExpectedShard[]): { shard: number; hosts: string[] }[] {
  const reported = new Set(reports.flatMap((r) => r.hosts.map((h) => h.host)));
  return expected
    .map((s) => ({ shard: s.shard, hosts: s.targets.split(',').filter(Boolean) }))
    .filter((s) => s.hosts.length > 0 && !s.hosts.some((h) => reported.has(h)));
}

/**
 * Combines the reports of the shards of one bulk deploy. Hosts and audit records are concatenated, phases with
 * the same name are joined, and the status says how the fleet as a whole ended: success only if every expected
 * shard reported success; failed/rolled_back/aborted if no host ended on the new release; partial_success
 * otherwise.
 */
export function mergeReports(reports: Report[], opts: MergeOptions = {}): Report {
  const missing = opts.expected ? missingShards(reports, opts.expected) : [];
  if (reports.length === 0 && missing.length === 0) throw new Error('no reports to merge');
  if (reports.length) sameRelease(reports);
  const phases = new Map<string, PhaseReport>();
  for (const r of reports) {
    for (const p of r.phases) {
      const m = phases.get(p.name);
      if (!m) {
        phases.set(p.name, { ...p, hosts: [...p.hosts] });
        continue;
      }
      m.hosts.push(...p.hosts);
      m.durationMs = Math.max(m.durationMs, p.durationMs);
      if (p.status !== 'ok' && m.status === 'ok') {
        m.status = p.status;
        m.error = p.error;
      }
    }
  }
  const statuses = reports.map((r) => r.status);
  const deployed = reports.flatMap((r) => r.systemsDeployed);
  const worst = (['rolled_back', 'failed', 'aborted'] as DeployStatus[]).find((s) => statuses.includes(s));
  let status: DeployStatus;
  if (missing.length === 0 && statuses.every((s) => s === 'success')) status = 'success';
  else if (deployed.length === 0) status = worst ?? 'failed';
  else status = 'partial_success';
  const failing = reports.filter((r) => r.status !== 'success');
  const total = Math.max(reports.length + missing.length, opts.expected?.length ?? 0);
  const unknownHosts: HostFinalState[] = missing.flatMap((s) =>
    s.hosts.map((host) => ({ host, before: null, after: null, state: 'unknown' as const })),
  );
  const notes: string[] = [];
  if (failing.length || missing.length)
    notes.push(`${failing.length + missing.length} of ${total} shards did not succeed`);
  if (missing.length) {
    const names = unknownHosts.map((h) => h.host);
    notes.push(
      `${missing.length} produced no report (shard ${missing.map((s) => s.shard).join(', ')}; state unknown on ${names.slice(0, 10).join(', ')}${names.length > 10 ? `, … ${names.length - 10} more` : ''})`,
    );
  }
  const firstError = failing.find((r) => r.error)?.error;
  const error: ErrorInfo | undefined = notes.length
    ? {
        ...(firstError ?? { class: 'internal' as const }),
        message: `${notes.join('; ')}${firstError ? `; first: ${firstError.message}` : ''}`,
      }
    : undefined;
  const first: Report | undefined = reports[0];
  const times = reports.length ? span(reports) : { startedAt: '', finishedAt: '' };
  return {
    schema: 1,
    project: first?.project ?? '',
    release: first?.release ?? { id: 'unknown', commit: '', ref: '' },
    run: first?.run ?? {},
    phasesRequested: first?.phasesRequested ?? [],
    dryRun: first?.dryRun,
    status,
    phase: failing[0]?.phase ?? first?.phase ?? 'preflight',
    systemsDeployed: deployed,
    durationSeconds: reports.length ? Math.max(...reports.map((r) => r.durationSeconds)) : 0,
    ...times,
    error,
    rollbackFailed: reports.some((r) => r.rollbackFailed) || undefined,
    phases: [...phases.values()],
    hosts: [...reports.flatMap((r) => r.hosts), ...unknownHosts],
    audit: reports.flatMap((r) => r.audit ?? []),
  };
}

/**
 * Combines the reports of the consecutive jobs of one deploy (staging, production after approval, public,
 * verify) into the report of the whole pipeline. Jobs ran one after another, so their phases are listed in order
 * and each host ends as the last job that touched it saw it; `before` is what it ran before the first job.
 *
 * The status is not derived here: only the workflow knows about jobs that never produced a report (a rejected
 * approval, a cancelled or crashed job), so it passes the status it derived from its jobs' results.
 */
export function mergePipelineReports(reports: Report[], status: DeployStatus): Report {
  if (reports.length === 0) throw new Error('no reports to merge');
  sameRelease(reports);
  const ordered = [...reports].sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  const last = ordered[ordered.length - 1];
  const release = last.release;
  const hosts = new Map<string, HostFinalState>();
  for (const r of ordered) {
    for (const h of r.hosts) {
      const prev = hosts.get(h.host);
      hosts.set(h.host, {
        ...h,
        stage: prev?.stage ?? h.stage,
        before: prev ? prev.before : h.before,
        rollback: h.rollback ?? prev?.rollback,
      });
    }
  }
  const finals = [...hosts.values()].map((h): HostFinalState => {
    // A later job sees an earlier job's deploy as "unchanged"; across the pipeline it is new.
    const state: HostFinalState['state'] =
      h.state === 'unknown'
        ? 'unknown'
        : h.after === release.id
          ? h.before === release.id
            ? 'unchanged'
            : 'new'
          : h.after === null
            ? 'none'
            : 'previous';
    return { ...h, state };
  });
  const failing = ordered.find((r) => r.status !== 'success');
  const error: ErrorInfo | undefined =
    failing?.error ??
    (status === 'success'
      ? undefined
      : {
          class: 'internal',
          message: `the workflow ended ${status}, and no job report says why: a job was rejected, cancelled or stopped before it reported`,
        });
  const times = span(ordered);
  const wall = (Date.parse(times.finishedAt) - Date.parse(times.startedAt)) / 1000;
  return {
    schema: 1,
    project: last.project,
    status,
    phase: (failing ?? last).phase,
    systemsDeployed: finals
      .filter((f) => f.after === release.id && f.stage && f.state !== 'unknown')
      .map((f) => f.host),
    // From the first job's start to the last job's end, approval waits included: what the operator lived through.
    durationSeconds:
      Number.isFinite(wall) && wall > 0
        ? Math.round(wall * 10) / 10
        : ordered.reduce((a, r) => a + r.durationSeconds, 0),
    ...times,
    release,
    run: last.run,
    phasesRequested: [...new Set(ordered.flatMap((r) => r.phasesRequested))],
    error,
    rollbackFailed: ordered.some((r) => r.rollbackFailed) || undefined,
    phases: ordered.flatMap((r) => r.phases),
    hosts: finals,
    audit: ordered.flatMap((r) => r.audit ?? []),
  };
}
