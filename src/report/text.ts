import type { DeployEvent } from '../run/events';
import { formatDuration } from '../util/duration';
import type { Report } from './types';

const ICON: Record<string, string> = {
  success: '✔',
  partial_success: '◐',
  failed: '✖',
  aborted: '⊘',
  rolled_back: '↶',
};

/** One line per event, for a terminal or an Actions log; nothing here is secret (events are redacted upstream). */
export function renderEvent(e: DeployEvent): string | undefined {
  switch (e.type) {
    case 'run-start':
      return `homelab-deploy ${e.project}: release ${e.release} (commit ${e.commit.slice(0, 12)}), phases ${e.phases.join(' → ')}`;
    case 'phase-start':
      return `▶ ${e.phase} [${e.hosts.join(', ')}]`;
    case 'phase-end':
      return `${e.ok ? '✔' : '✖'} ${e.phase} ${e.ok ? 'done' : `failed: [${e.error?.class}] ${e.error?.message}`} (${formatDuration(e.durationMs)})`;
    case 'host-step':
      return `    ${e.step.ok ? '·' : '✖'} ${e.host} ${e.step.name}${e.step.ok ? '' : ` exit ${e.step.exitCode}`} (${formatDuration(e.step.durationMs)})`;
    case 'host-health': {
      // One line per check: name, host, result, how long it took, attempts, and the last error if it failed.
      const h = e.health;
      const tries = `${h.attempts} attempt${h.attempts === 1 ? '' : 's'}`;
      return `    ${h.ok ? '♥' : '✖'} ${e.host} ${h.check}: ${h.ok ? 'healthy' : 'FAILED'} in ${formatDuration(h.durationMs)} (${tries})${h.ok ? '' : `: ${h.lastError}`}`;
    }
    case 'host-end':
      return `  ${e.ok ? '✔' : '✖'} ${e.host}${e.attempt > 1 ? ` attempt ${e.attempt}` : ''} ${e.ok ? 'ok' : `[${e.error?.class}] ${e.error?.message}`} (${formatDuration(e.durationMs)})`;
    case 'retry':
      return `  ↻ ${e.host}: retrying (attempt ${e.attempt}) in ${formatDuration(e.delayMs)} after [${e.error.class}]`;
    case 'tests':
      return `  ${e.ok ? '✔' : '✖'} tests on ${e.on}: exit ${e.exitCode} (${formatDuration(e.durationMs)})`;
    case 'rollback':
      return `  ↶ ${e.host}: rollback to ${e.to ?? '(no previous release: stack stopped)'} ${e.ok ? 'done' : `FAILED: ${e.error?.message}`}`;
    case 'log':
      return `  ${e.level === 'warn' ? '⚠' : 'ℹ'} ${e.message}`;
    case 'run-end':
      return undefined;
  }
}

export function renderReportText(r: Report): string {
  const lines: string[] = [];
  lines.push('');
  lines.push(
    `${ICON[r.status] ?? '?'} ${r.status.toUpperCase()}  ${r.project} ${r.release.id}  phase: ${r.phase}  ${r.durationSeconds}s`,
  );
  if (r.error)
    lines.push(`  error [${r.error.class}]${r.error.host ? ` on ${r.error.host}` : ''}: ${r.error.message}`);
  const rows = r.hosts.map((h) => [
    h.host,
    h.stage ?? '-',
    h.before ?? '(none)',
    h.after ?? '(none)',
    h.state,
    h.rollback ? (h.rollback.ok ? 'rolled back' : 'ROLLBACK FAILED') : '',
  ]);
  const head = ['host', 'stage', 'before', 'after', 'state', 'rollback'];
  const widths = head.map((hd, i) => Math.max(hd.length, ...rows.map((row) => row[i].length)));
  const fmt = (row: string[]) =>
    '  ' +
    row
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  lines.push(fmt(head));
  for (const row of rows) lines.push(fmt(row));
  lines.push(`  systems deployed: ${r.systemsDeployed.length ? r.systemsDeployed.join(', ') : '(none)'}`);
  return lines.join('\n');
}
