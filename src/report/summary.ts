import { formatDuration } from '../util/duration';
import type { HostFinalState, HostPhaseReport, PhaseReport, Report } from './types';

const HEADLINE: Record<Report['status'], string> = {
  success: '✅ Deploy succeeded',
  partial_success: '⚠️ Partial success: manual intervention required',
  failed: '❌ Deploy failed',
  aborted: '⛔ Deploy aborted, nothing changed',
  rolled_back: '↩️ Deploy rolled back',
};

/** GitHub rejects a step summary over 1 MiB; stay clear of it. */
const DEFAULT_MAX_BYTES = 1_000_000;
/** Above this many hosts, hosts that succeeded are counted per stage instead of listed. */
const FULL_TABLE_HOSTS = 50;

const cell = (s: string | number | null | undefined) =>
  String(s ?? '—')
    .replace(/[\r\n]+/g, ' ')
    .replace(/\|/g, '\\|')
    .replace(/</g, '&lt;')
    .slice(0, 300);

function mermaid(phases: PhaseReport[]): string {
  const id = (i: number) => `p${i}`;
  const lines = ['```mermaid', 'flowchart LR'];
  phases.forEach((p, i) => {
    const label = `${p.name}${p.status === 'ok' ? '' : ` (${p.status.replace('_', ' ')})`}`;
    lines.push(`  ${id(i)}["${label.replace(/"/g, "'")}"]:::${p.status}`);
    if (i > 0) lines.push(`  ${id(i - 1)} --> ${id(i)}`);
  });
  lines.push(
    '  classDef ok fill:#d3f9d8,stroke:#2b8a3e',
    '  classDef failed fill:#ffe3e3,stroke:#c92a2a',
    '  classDef rolled_back fill:#fff3bf,stroke:#e67700',
    '  classDef skipped fill:#f1f3f5,stroke:#868e96',
    '```',
  );
  return lines.join('\n');
}

interface HostRow {
  final: HostFinalState;
  phase?: HostPhaseReport;
}

function hostRows(r: Report): HostRow[] {
  return r.hosts.map((final) => ({
    final,
    phase: r.phases.find((p) => p.name === final.stage)?.hosts.find((h) => h.host === final.host),
  }));
}

function rowOf({ final: f, phase: p }: HostRow): string {
  const checks = p?.health.length ? `${p.health.filter((h) => h.ok).length}/${p.health.length}` : '—';
  const result = f.rollback
    ? f.rollback.ok
      ? '↩️ rolled back'
      : '🔥 ROLLBACK FAILED'
    : f.state === 'new' || f.state === 'unchanged'
      ? '✅'
      : p && !p.ok
        ? '❌'
        : '·';
  const err = p?.error
    ? `${p.error.class}: ${p.error.message}`
    : f.rollback?.error
      ? `${f.rollback.error.class}: ${f.rollback.error.message}`
      : '';
  return `| ${cell(f.host)} | ${cell(f.stage)} | ${cell(f.before)} → ${cell(f.after)} | ${p ? formatDuration(p.durationMs) : '—'} | ${p?.attempts.length || '—'} | ${checks} | ${result} | ${cell(err)} |`;
}

/** Beyond this many check results the per-check list is left to the report file (the summary has 1 MiB). */
const MAX_CHECK_LINES = 3000;

const TABLE_HEAD = [
  '| host | stage | release before → after | duration | attempts | checks | result | error |',
  '|---|---|---|---|---|---|---|---|',
];

/** Waves, failures by class and the targets left untouched: what a fleet run needs said in counts. */
function fleetSections(r: Report): string[] {
  const out: string[] = [];
  if (r.waves?.length) {
    out.push(
      '',
      '### Waves',
      '| stage | wave | targets | ok | failed | not started | duration | budget |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const w of r.waves)
      out.push(
        `| ${cell(w.stage)} | ${w.index}${w.index === 1 ? ' (canary)' : ''} | ${w.targets.length} | ${w.ok} | ${w.failed} | ${w.notStarted} | ${formatDuration(w.durationMs)} | ${w.budget?.exceeded ? `❌ ${cell(w.budget.decision)}` : '✅'} |`,
      );
  }
  const failed = r.phases.flatMap((p) =>
    p.hosts.filter((h) => !h.ok && h.error).map((h) => ({ p: p.name, h })),
  );
  if (r.waves?.length && failed.length) {
    const byClass = new Map<string, string[]>();
    for (const { h } of failed) byClass.set(h.error!.class, [...(byClass.get(h.error!.class) ?? []), h.host]);
    out.push('', '### Failures by class', '| class | targets | first ones |', '|---|---|---|');
    for (const [c, names] of [...byClass].sort((a, b) => b[1].length - a[1].length))
      out.push(
        `| ${c} | ${names.length} | ${cell(names.slice(0, 10).join(', '))}${names.length > 10 ? ', …' : ''} |`,
      );
  }
  if (r.left?.targets.length)
    out.push('', `**${r.left.targets.length} target(s) left untouched:** ${cell(r.left.reason)}`);
  return out;
}

/** Markdown for $GITHUB_STEP_SUMMARY: headline, phase diagram, a row per host, errors, rollbacks and tests. */
export function renderSummary(r: Report, opts: { maxBytes?: number } = {}): string {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const out: string[] = [];
  // An escalation is the first thing on call needs to see.
  if (r.escalation)
    out.push(
      `> [!CAUTION]\n> **ESCALATION:** the failure budget of ${cell(r.escalation.stage)} was passed in wave ${r.escalation.wave}: ${cell(r.escalation.reason)}. The rollout stopped.\n`,
    );
  out.push(`## ${HEADLINE[r.status]} — ${cell(r.project)} \`${r.release.id}\``);
  out.push(
    `**Status:** \`${r.status}\` · **phase reached:** ${r.phase} · **duration:** ${r.durationSeconds}s · **commit:** \`${r.release.commit.slice(0, 12)}\` (${cell(r.release.ref)}) · **deployed to:** ${r.systemsDeployed.length}/${r.hosts.filter((h) => h.stage).length} hosts`,
  );
  if (r.error)
    out.push(
      `\n> **${r.error.class}**${r.error.phase ? ` in ${r.error.phase}` : ''}${r.error.host ? ` on ${r.error.host}` : ''}: ${cell(r.error.message)}`,
    );
  if (r.rollbackFailed) {
    const bad = r.hosts.filter((h) => h.rollback && !h.rollback.ok);
    out.push(
      `\n> [!CAUTION]\n> Rollback failed on ${bad.map((h) => `**${h.host}** (now on ${h.after ?? 'unknown'})`).join(', ')}. These hosts need a person.`,
    );
  }
  out.push('', mermaid(r.phases));
  out.push(...fleetSections(r));

  const rows = hostRows(r);
  const attention = rows.filter(
    (x) => x.final.rollback || (x.phase && !x.phase.ok) || x.final.state === 'unknown',
  );
  const fine = rows.filter((x) => !attention.includes(x));
  out.push('', '### Hosts');
  if (rows.length <= FULL_TABLE_HOSTS) {
    out.push(...TABLE_HEAD, ...rows.map(rowOf));
  } else {
    if (attention.length)
      out.push(`**${attention.length} host(s) need attention:**`, '', ...TABLE_HEAD, ...attention.map(rowOf));
    const byStage = new Map<string, number>();
    for (const x of fine) byStage.set(x.final.stage ?? '—', (byStage.get(x.final.stage ?? '—') ?? 0) + 1);
    out.push(
      '',
      `**${fine.length} host(s) fine:** ${[...byStage].map(([s, n]) => `${s}: ${n}`).join(' · ')}`,
    );
    out.push(
      '',
      '<details><summary>All hosts</summary>',
      '',
      ...TABLE_HEAD,
      ...fine.map(rowOf),
      '',
      '</details>',
    );
  }

  const tests = r.phases.filter((p) => p.tests);
  for (const p of tests) {
    const t = p.tests!;
    const counts = t.junit
      ? ` — ${t.junit.passed} passed, ${t.junit.failures + t.junit.errors} failed, ${t.junit.skipped} skipped`
      : '';
    out.push(
      '',
      `### Tests (${p.name}, on ${t.on}): ${t.ok ? '✅ passed' : `❌ exit ${t.exitCode}`}${counts}`,
    );
    out.push(
      '<details><summary>Output (tail)</summary>',
      '',
      '```',
      t.outputTail.replace(/```/g, "'''"),
      '```',
      '</details>',
    );
  }
  const checks = r.phases.flatMap((p) =>
    p.hosts.flatMap((h) => h.health.map((c) => ({ phase: p.name, host: h.host, c }))),
  );
  const failedChecks = checks.filter((x) => !x.c.ok);
  const CHECK_HEAD = [
    '| phase | host | check | result | duration | attempts | last error |',
    '|---|---|---|---|---|---|---|',
  ];
  const checkRow = (x: (typeof checks)[number]) =>
    `| ${x.phase} | ${cell(x.host)} | ${cell(x.c.check)} | ${x.c.ok ? '✅' : '❌'} | ${formatDuration(x.c.durationMs)} | ${x.c.attempts} | ${cell(x.c.lastError)} |`;
  if (failedChecks.length) {
    out.push('', '### Failed checks', ...CHECK_HEAD);
    for (const x of failedChecks.slice(0, 200)) out.push(checkRow(x));
  }
  // Every check, one line each (a smoke report), folded: at fleet scale this is the longest part.
  if (checks.length && checks.length <= MAX_CHECK_LINES)
    out.push(
      '',
      `<details><summary>All checks (${checks.length})</summary>`,
      '',
      ...CHECK_HEAD,
      ...checks.map(checkRow),
      '',
      '</details>',
    );
  else if (checks.length)
    out.push(
      '',
      `_${checks.length} checks ran; the one-line-per-check list is in the \`report-file\` output._`,
    );

  let text = out.join('\n') + '\n';
  if (Buffer.byteLength(text) > maxBytes) {
    const note = `\n\n_…summary truncated at ${Math.round(maxBytes / 1024)} KiB; the full report is in the \`report-file\` output._\n`;
    let cut = Buffer.from(text)
      .subarray(0, maxBytes - Buffer.byteLength(note) - 16)
      .toString('utf8');
    cut = cut.slice(0, cut.lastIndexOf('\n'));
    const open = (cut.match(/<details>/g) ?? []).length - (cut.match(/<\/details>/g) ?? []).length;
    text = cut + (open > 0 ? '\n</details>' : '') + note;
  }
  return text;
}
