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
      return `▶ ${e.phase} [${e.hosts.length > 12 ? `${e.hosts.length} targets` : e.hosts.join(', ')}]`;
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
    case 'wave-start':
      return `  ▶ ${e.phase} wave ${e.wave}/${e.waves}: ${e.targets} targets`;
    case 'wave-progress':
      return `    ${e.phase} wave ${e.wave}: ${e.done}/${e.total} done, ${e.failed} failed`;
    case 'wave-end':
      return `  ${e.failed ? '◐' : '✔'} ${e.phase} wave ${e.wave}: ${e.ok} ok, ${e.failed} failed${e.stopped ? `; STOPPED: ${e.stopped}` : ''}`;
    case 'escalation':
      return `  🚨 ESCALATION: ${e.escalation.stage} wave ${e.escalation.wave}: ${e.escalation.reason}`;
    case 'run-end':
      return undefined;
  }
}

/** Above this many targets the text report gives counts and the failures, not a row per target. */
const FULL_TABLE = 50;

function fleetText(r: Report): string[] {
  const lines: string[] = [];
  const count = (key: (h: Report['hosts'][number]) => string) => {
    const m = new Map<string, number>();
    for (const h of r.hosts) m.set(key(h), (m.get(key(h)) ?? 0) + 1);
    return [...m].map(([k, n]) => `${k} ${n}`).join(', ');
  };
  lines.push(`  ${r.hosts.length} targets: ${count((h) => h.state)}`);
  for (const w of r.waves ?? [])
    lines.push(
      `  ${w.stage} wave ${w.index}: ${w.ok} ok, ${w.failed} failed${w.notStarted ? `, ${w.notStarted} not started` : ''}${w.budget?.exceeded ? ` — budget passed: ${w.budget.decision}` : ''}`,
    );
  const failed = r.phases.flatMap((p) => p.hosts.filter((h) => !h.ok));
  const byClass = new Map<string, string[]>();
  for (const h of failed)
    byClass.set(h.error?.class ?? 'internal', [...(byClass.get(h.error?.class ?? 'internal') ?? []), h.host]);
  for (const [c, names] of byClass)
    lines.push(
      `  failed [${c}] ${names.length}: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''}`,
    );
  const back = r.hosts.filter((h) => h.rollback);
  if (back.length)
    lines.push(
      `  rolled back: ${back.filter((h) => h.rollback?.ok).length}${
        back.some((h) => !h.rollback?.ok)
          ? `, ROLLBACK FAILED on ${back
              .filter((h) => !h.rollback?.ok)
              .map((h) => h.host)
              .join(', ')}`
          : ''
      }`,
    );
  if (r.left?.targets.length) lines.push(`  left untouched: ${r.left.targets.length} (${r.left.reason})`);
  lines.push(
    `  systems deployed: ${r.systemsDeployed.length} (the full table is in the JSON report: --report-file)`,
  );
  return lines;
}

export function renderReportText(r: Report): string {
  const lines: string[] = [];
  lines.push('');
  lines.push(
    `${ICON[r.status] ?? '?'} ${r.status.toUpperCase()}  ${r.project} ${r.release.id}  phase: ${r.phase}  ${r.durationSeconds}s`,
  );
  if (r.escalation)
    lines.push(
      `  🚨 ESCALATION: the failure budget of ${r.escalation.stage} was passed in wave ${r.escalation.wave}: ${r.escalation.reason}`,
    );
  if (r.error)
    lines.push(`  error [${r.error.class}]${r.error.host ? ` on ${r.error.host}` : ''}: ${r.error.message}`);
  if (r.hosts.length > FULL_TABLE) return [...lines, ...fleetText(r)].join('\n');
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
