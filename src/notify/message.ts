import type { NotifyEvent } from '../config/types';
import type { EscalationReport, Report } from '../report/types';

export interface NotifyContext {
  repository?: string;
  runUrl?: string;
  environment?: string;
}

/** The facts every service's message is built from, so all services say the same thing. */
export interface Message {
  event: NotifyEvent;
  title: string;
  status: Report['status'] | 'started';
  project: string;
  repository?: string;
  ref: string;
  commit: string;
  release: string;
  environment?: string;
  runUrl?: string;
  summary: string; // one line: hosts deployed, duration
  hosts: { host: string; stage?: string; line: string }[]; // first few hosts
  moreHosts: number;
  error?: string;
  action?: string; // what a person must do, if anything
}

const MAX_HOSTS = 10;

export function eventFor(report: Report): NotifyEvent {
  if (report.rollbackFailed) return 'rollback_failed';
  switch (report.status) {
    case 'success':
      return 'succeeded';
    case 'partial_success':
      return 'partial_success';
    case 'rolled_back':
      return 'rolled_back';
    default:
      return 'failed';
  }
}

const TITLES: Record<NotifyEvent, string> = {
  started: '🚀 Deploy started',
  succeeded: '✅ Deploy succeeded',
  partial_success: '⚠️ Partial success: manual intervention required',
  failed: '❌ Deploy failed',
  rolled_back: '↩️ Deploy rolled back',
  rollback_failed: '🔥 ROLLBACK FAILED: manual intervention required',
  escalation: '🚨 Escalation: the failure budget was passed and the rollout stopped',
};

export function buildMessage(
  event: NotifyEvent,
  r:
    | Report
    | { project: string; release: Report['release']; hosts?: undefined; escalation?: EscalationReport },
  ctx: NotifyContext,
): Message {
  if (event === 'escalation' && r.escalation) return escalationMessage(r.escalation, r, ctx);
  const full = 'status' in r ? (r as Report) : undefined;
  const hosts = (full?.hosts ?? []).filter((h) => h.stage);
  const shown = [
    ...hosts.filter((h) => h.state !== 'new' && h.state !== 'unchanged'),
    ...hosts.filter((h) => h.state === 'new' || h.state === 'unchanged'),
  ].slice(0, MAX_HOSTS);
  return {
    event,
    title: TITLES[event],
    status: full?.status ?? 'started',
    project: r.project,
    repository: ctx.repository,
    ref: r.release.ref,
    commit: r.release.commit,
    release: r.release.id,
    environment: ctx.environment,
    runUrl: ctx.runUrl,
    summary: full
      ? `${full.systemsDeployed.length}/${hosts.length} hosts on ${full.release.id} in ${full.durationSeconds}s (phase ${full.phase})`
      : `deploying ${r.release.id}`,
    hosts: shown.map((h) => ({
      host: h.host,
      stage: h.stage,
      line: h.rollback
        ? h.rollback.ok
          ? `rolled back to ${h.rollback.to ?? 'nothing'}`
          : `ROLLBACK FAILED, on ${h.after ?? 'unknown'}`
        : `${h.before ?? '—'} → ${h.after ?? '—'} (${h.state})`,
    })),
    moreHosts: Math.max(0, hosts.length - shown.length),
    error: full?.error ? `${full.error.class}: ${full.error.message}`.slice(0, 500) : undefined,
    action:
      event === 'partial_success' || event === 'rollback_failed'
        ? 'Manual intervention required: see the run for the hosts that are not on the new release.'
        : undefined,
  };
}

/** What a person on call needs first: which rollout stopped, how bad, what kind of failure, where to look. */
function escalationMessage(
  e: EscalationReport,
  r: { project: string; release: Report['release'] },
  ctx: NotifyContext,
): Message {
  const classes = Object.entries(e.classes)
    .sort((a, b) => b[1] - a[1])
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  return {
    event: 'escalation',
    title: TITLES.escalation,
    status: 'failed',
    project: r.project,
    repository: ctx.repository,
    ref: r.release.ref,
    commit: r.release.commit,
    release: r.release.id,
    environment: ctx.environment,
    runUrl: ctx.runUrl,
    summary: `${e.stage}, wave ${e.wave}: ${e.reason}; ${Math.round(e.rate * 1000) / 10}% of the targets done so far failed`,
    hosts: e.firstFailing.slice(0, MAX_HOSTS).map((host) => ({ host, stage: e.stage, line: 'failed' })),
    moreHosts: Math.max(0, e.firstFailing.length - MAX_HOSTS),
    error: classes ? `failures by class: ${classes}` : undefined,
    action:
      'The rollout stopped: no further wave starts. Look at the failing targets before deploying again.',
  };
}
