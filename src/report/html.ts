import { esc, fmtDuration, fmtTime, htmlPage, jsonForScript, pct, safeHref } from './html-kit';
import {
  ATTENTION,
  RESULT_LABEL,
  countBy,
  failures,
  isRollbackOnly,
  phasesOf,
  targetRows,
  waveSize,
  wavesOf,
  type Failure,
  type TargetRow,
  type WaveReport,
} from './html-model';
import { TIMELINE_CSS, renderTimeline } from './html-timeline';
import type { HostPhaseReport, PhaseReport, Report } from './types';

export type { ReportExtras, WaveReport } from './html-model';

/**
 * One self-contained HTML page of a run: status first, then what needs a person (rollback failures, escalation,
 * failures by class), then the phase timeline, checks, tests, and every target behind a search box. At fleet
 * scale only what failed is drawn up front; the full table is built in the browser from embedded data, on demand,
 * a page of rows at a time, so a 1500-target run opens as fast as a 3-host one.
 */

/** Up to this many targets every target gets a timeline row and a detail section; above it, only those needing attention. */
const ALL_TARGETS_UP_TO = 40;
/** Timeline rows drawn for a fleet: the first targets that need attention. */
const TIMELINE_ATTENTION_ROWS = 40;
/** Failures listed in full on the page; a run with more has them all in the searchable table. */
const MAX_FAILURES_LISTED = 1000;
/** Failures that get their output shown inline. */
const MAX_FAILURE_OUTPUTS = 100;
/** Rows the target table shows at once (more on request). */
const PAGE_SIZE = 200;
const MAX_AUDIT_LINES = 500;
const OUTPUT_CHARS = 4000;

const HEADLINE: Record<string, string> = {
  success: 'Deploy succeeded',
  partial_success: 'Partial success: manual intervention required',
  failed: 'Deploy failed',
  aborted: 'Deploy aborted, nothing changed',
  rolled_back: 'Deploy rolled back',
};
const BANNER: Record<string, string> = {
  success: 'ok',
  partial_success: 'warn',
  failed: 'bad',
  aborted: 'info',
  rolled_back: 'rb',
};

const d = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? fmtDuration(v) : '—');
const tail = (s: string | undefined) =>
  s === undefined ? '' : s.length > OUTPUT_CHARS ? `…${s.slice(s.length - OUTPUT_CHARS)}` : s;
const pill = (cls: string, text: string) => `<span class="pill ${esc(cls)}">${esc(text)}</span>`;
const resultPill = (r: TargetRow['result']) =>
  pill(
    r === 'ok' || r === 'unchanged'
      ? 'ok'
      : r === 'rolled_back'
        ? 'rb'
        : r === 'untouched'
          ? 'skipped'
          : r === 'unknown'
            ? 'warn'
            : 'bad',
    RESULT_LABEL[r],
  );

function header(r: Report, rows: TargetRow[], waves: WaveReport[]): string {
  const status = typeof r.status === 'string' ? r.status : 'unknown';
  const release = r.release ?? { id: '?', commit: '', ref: '' };
  const run = r.run ?? {};
  const runHref = safeHref(run.url);
  const repo =
    typeof run.repository === 'string' && /^[\w.-]+\/[\w.-]+$/.test(run.repository) ? run.repository : '';
  const commitHref =
    runHref && repo && /^[0-9a-f]{7,64}$/i.test(release.commit ?? '')
      ? `${new URL(runHref).origin}/${repo}/commit/${release.commit}`
      : undefined;
  const deployedTo = rows.filter((x) => x.stage).length;
  const escalation = escalationLine(waves);
  const err = r.error
    ? `<p class="error" data-error-class="${esc(r.error.class)}"><b>${esc(r.error.class)}</b>${r.error.phase ? ` in <b>${esc(r.error.phase)}</b>` : ''}${r.error.host ? ` on <b>${esc(r.error.host)}</b>` : ''}: <span class="msg">${esc(r.error.message)}</span></p>`
    : '';
  const meta = [
    ['release', `<code>${esc(release.id)}</code>`],
    [
      'commit',
      commitHref
        ? `<a href="${esc(commitHref)}"><code>${esc(String(release.commit).slice(0, 12))}</code></a>`
        : `<code title="${esc(release.commit)}">${esc(String(release.commit ?? '').slice(0, 12))}</code>`,
    ],
    ['ref', `<code>${esc(release.ref)}</code>`],
    [
      'run',
      runHref
        ? `<a href="${esc(runHref)}">${esc(run.id ?? runHref)}</a>`
        : run.url || run.id
          ? esc(run.url ?? run.id)
          : '<span class="muted">local run</span>',
    ],
    ...(run.repository ? [['repository', esc(run.repository)]] : []),
    ...(run.actor ? [['actor', esc(run.actor)]] : []),
    ['phase reached', esc(r.phase)],
    ['deployed to', `${esc((r.systemsDeployed ?? []).length)}/${deployedTo} targets`],
    ['started', esc(fmtTime(r.startedAt))],
    ['duration', esc(typeof r.durationSeconds === 'number' ? `${r.durationSeconds}s` : '—')],
    ['phases requested', esc((r.phasesRequested ?? []).join(', '))],
  ]
    .map(([k, v]) => `<span>${k}: <b>${v}</b></span>`)
    .join('');
  return `<header>
<h1>homelab-deploy · ${esc(r.project)}${r.dryRun ? ' ' + pill('warn', 'DRY RUN') : ''}</h1>
<section class="banner ${BANNER[status] ?? 'bad'}" id="status" data-status="${esc(status)}">
${escalation}
<div class="headline">${esc(HEADLINE[status] ?? `Deploy ${status}`)} <span class="pill ${BANNER[status] ?? 'bad'}">${esc(status)}</span></div>
${err}
<div class="meta">${meta}</div>
</section>
${rollbackAlarm(r, rows)}
</header>`;
}

/** The rollout passed its failure budget: said first, above everything else about the run. */
function escalationLine(waves: WaveReport[]): string {
  const w = waves.find((x) => x.budget?.exceeded || x.escalation?.sent);
  if (!w) return '';
  const rate = w.escalation?.rate ?? w.budget?.failRate;
  const budget =
    w.budget?.maxFailPercentage !== undefined
      ? `${w.budget.maxFailPercentage} %`
      : w.budget?.maxFail !== undefined
        ? `${w.budget.maxFail} target(s)`
        : 'the budget';
  const sent =
    w.escalation?.sent === true
      ? `escalation sent${w.escalation.channels?.length ? ` (${w.escalation.channels.join(', ')})` : ''}`
      : w.escalation?.error
        ? `escalation NOT sent: ${w.escalation.error}`
        : '';
  return `<div class="escalation" id="escalation"><b>ESCALATED:</b> failure rate ${rate === undefined ? '?' : esc(pct(rate))} passed ${esc(budget)} in wave ${esc(w.index)} of ${esc(w.stage)}; rollout stopped${w.budget?.decision ? ` (${esc(w.budget.decision)})` : ''}${sent ? `; ${esc(sent)}` : ''}.</div>`;
}

function rollbackAlarm(r: Report, rows: TargetRow[]): string {
  const bad = rows.filter((x) => x.result === 'rollback_failed' || x.result === 'rollback_pending');
  if (!bad.length && !r.rollbackFailed) return '';
  const items = bad
    .map(
      (x) =>
        `<li><b>${esc(x.name)}</b>: ${x.result === 'rollback_pending' ? 'rollback still running' : 'rollback'} to ${esc(x.rollback?.to ?? '(nothing)')} ${x.result === 'rollback_pending' ? '' : 'failed'}; now on <code>${esc(x.after ?? 'unknown')}</code> (${esc(x.state)})${x.rollback?.error ? ` — ${esc(x.rollback.error.class)}: ${esc(x.rollback.error.message)}` : ''}</li>`,
    )
    .join('');
  return `<section class="alarm" id="rollback-failed" role="alert"><div class="headline">ROLLBACK FAILED</div>
<p>${bad.length || 'Some'} target(s) could not be returned to their previous release. They need a person.</p><ul>${items}</ul></section>`;
}

function cards(rows: TargetRow[], fails: Failure[]): string {
  const n = (pred: (x: TargetRow) => boolean) => rows.filter(pred).length;
  const list: [string, number, string, string][] = [
    ['targets', rows.length, '', 'targets'],
    ['on new release', n((x) => x.result === 'ok'), 'ok', 'ok'],
    ['unchanged', n((x) => x.result === 'unchanged'), '', 'unchanged'],
    ['failed', n((x) => x.result === 'failed'), 'bad', 'failed'],
    ['rolled back', n((x) => x.result === 'rolled_back'), 'rb', 'rolled_back'],
    [
      'rollback failed',
      n((x) => x.result === 'rollback_failed' || x.result === 'rollback_pending'),
      'bad',
      'rollback_failed',
    ],
    ['state unknown', n((x) => x.result === 'unknown'), 'warn', 'unknown'],
    ['not deployed', n((x) => x.result === 'untouched'), '', 'untouched'],
    ['failures', fails.length, fails.length ? 'bad' : '', 'failures'],
  ];
  return `<div class="cards" id="counts">${list
    .filter(([, v, , key]) => v > 0 || key === 'targets' || key === 'failures')
    .map(
      ([l, v, cls, key]) =>
        `<div class="card ${cls}" data-count="${key}"><div class="n">${v}</div><div class="l">${esc(l)}</div></div>`,
    )
    .join('')}</div>`;
}

function countTable(title: string, id: string, counts: [string, number][]): string {
  if (!counts.length) return '';
  return `<table class="counts" id="${id}"><thead><tr><th>${esc(title)}</th><th class="num">targets</th></tr></thead><tbody>${counts
    .map(([k, v]) => `<tr data-key="${esc(k)}"><td>${esc(k)}</td><td class="num">${v}</td></tr>`)
    .join('')}</tbody></table>`;
}

function wavesSection(waves: WaveReport[]): string {
  if (!waves.length) return '';
  const stages = [...new Set(waves.map((w) => w.stage))];
  const body = stages
    .map((stage) => {
      const ws = waves.filter((w) => w.stage === stage).sort((a, b) => a.index - b.index);
      const rows = ws
        .map((w) => {
          const size = waveSize(w);
          const ok = w.ok ?? 0;
          const failed = w.failed ?? 0;
          const rest = Math.max(0, size - ok - failed);
          const share = (v: number) => (size > 0 ? ((v / size) * 100).toFixed(2) : '0');
          const b = w.budget;
          const budget = b
            ? [
                b.maxFailPercentage !== undefined ? `≤ ${b.maxFailPercentage} %` : '',
                b.maxFail !== undefined ? `≤ ${b.maxFail}` : '',
              ]
                .filter(Boolean)
                .join(', ') || '—'
            : '—';
          const rate = b?.failRate ?? (ok + failed > 0 ? failed / (ok + failed) : undefined);
          const decision = b?.exceeded
            ? pill(
                'bad',
                `budget passed: ${b.decision ?? 'stop'}${b.policy ? `, roll back ${b.policy}` : ''}`,
              )
            : b?.decision
              ? esc(b.decision)
              : '—';
          const esca = w.escalation
            ? w.escalation.sent
              ? pill('bad', 'escalated')
              : w.escalation.error
                ? pill('warn', `not sent: ${w.escalation.error}`)
                : '—'
            : '—';
          const left = w.left?.length
            ? `<details><summary>${w.left.length} left</summary><p class="mono">${w.left.slice(0, 200).map(esc).join(', ')}${w.left.length > 200 ? ` … +${w.left.length - 200}` : ''}</p></details>`
            : w.notStarted
              ? `${w.notStarted} not started`
              : '';
          return `<tr data-wave="${esc(w.index)}"><td class="num">${esc(w.index)}${w.index === 1 ? ' <span class="muted">canary</span>' : ''}</td><td class="num">${size}</td><td><div class="wbar" title="${ok} ok, ${failed} failed, ${rest} not done"><i class="ok" style="width:${share(ok)}%"></i><i class="failed" style="width:${share(failed)}%"></i></div></td><td class="num">${ok}</td><td class="num">${failed}</td><td class="num">${rate === undefined ? '—' : esc(pct(rate))}</td><td>${esc(budget)}</td><td>${decision}</td><td>${esca}</td><td>${d(w.durationMs)}</td><td>${left}</td></tr>`;
        })
        .join('');
      return `<h3>${esc(stage)}</h3><table class="waves" data-stage="${esc(stage)}"><thead><tr><th class="num">wave</th><th class="num">targets</th><th></th><th class="num">ok</th><th class="num">failed</th><th class="num">fail rate</th><th>budget</th><th>decision</th><th>escalation</th><th>duration</th><th>left</th></tr></thead><tbody>${rows}</tbody></table>`;
    })
    .join('');
  return `<section id="waves"><h2>Waves</h2>${body}</section>`;
}

function failedOutput(e: HostPhaseReport | undefined): string {
  if (!e) return '';
  const steps = (Array.isArray(e.steps) ? e.steps : []).filter((s) => !s.ok && s.output);
  const checks = (Array.isArray(e.health) ? e.health : []).filter((h) => !h.ok && h.lastError);
  if (!steps.length && !checks.length) return '';
  return `<details><summary>output</summary>${steps
    .map(
      (s) =>
        `<div class="muted">step ${esc(s.name)}, exit ${esc(s.exitCode ?? '—')}</div><pre>${esc(tail(s.output))}</pre>`,
    )
    .join(
      '',
    )}${checks.map((h) => `<div class="muted">check ${esc(h.check)}</div><pre>${esc(tail(h.lastError))}</pre>`).join('')}</details>`;
}

function failuresSection(fails: Failure[]): string {
  if (!fails.length) return `<section id="failures"><h2>Failures</h2><p class="muted">None.</p></section>`;
  const byClass = countBy(fails, (f) => f.class);
  const summary = `<table id="failure-classes"><thead><tr><th>error class</th><th class="num">failures</th><th>where</th></tr></thead><tbody>${byClass
    .map(([cls, n]) => {
      const where = countBy(
        fails.filter((f) => f.class === cls),
        (f) => (f.what === 'rollback' ? `rollback after ${f.phase}` : f.phase),
      )
        .map(([p, k]) => `${esc(p)} ${k}`)
        .join(', ');
      return `<tr data-class="${esc(cls)}"><td><b>${esc(cls)}</b></td><td class="num">${n}</td><td>${where}</td></tr>`;
    })
    .join('')}</tbody></table>`;
  // Grouped by class, largest class first; the first MAX_FAILURES_LISTED in that order are listed.
  const listed = byClass
    .flatMap(([cls]) => fails.filter((f) => f.class === cls))
    .slice(0, MAX_FAILURES_LISTED);
  const withOutput = new Set(listed.filter((f) => failedOutput(f.entry)).slice(0, MAX_FAILURE_OUTPUTS));
  const row = (f: Failure) =>
    `<tr data-target="${esc(f.target)}" data-phase="${esc(f.phase)}" data-what="${f.what}"><td class="mono">${esc(f.target)}</td><td>${esc(f.phase)}</td><td>${f.what === 'rollback' ? pill('bad', 'ROLLBACK FAILED') : esc(f.what)}</td><td class="num">${f.attempts ?? '—'}</td><td class="msg">${esc(f.message)}${withOutput.has(f) ? failedOutput(f.entry) : ''}</td></tr>`;
  const groups = byClass
    .map(([cls, n]) => {
      const rows = listed.filter((f) => f.class === cls);
      return rows.length
        ? `<h3 data-class="${esc(cls)}">${esc(cls)} <span class="muted">(${n})</span></h3><table class="failures" data-class="${esc(cls)}"><thead><tr><th>target</th><th>phase</th><th>what</th><th class="num">attempts</th><th>error</th></tr></thead><tbody>${rows.map(row).join('')}</tbody></table>`
        : '';
    })
    .join('');
  const more =
    fails.length > MAX_FAILURES_LISTED
      ? `<p class="muted">${fails.length - MAX_FAILURES_LISTED} more failures: search the target table below (filter “needing attention”).</p>`
      : '';
  return `<section id="failures"><h2>Failures by class</h2>${summary}${groups}${more}</section>`;
}

function rollbacksSection(rows: TargetRow[]): string {
  const rb = rows.filter((x) => x.rollback);
  if (!rb.length) return '';
  rb.sort((a, b) => Number(a.rollback!.ok) - Number(b.rollback!.ok));
  const body = rb
    .slice(0, MAX_FAILURES_LISTED)
    .map((x) => {
      const r = x.rollback!;
      const res = r.ok
        ? pill('rb', r.unverified ? 'rolled back (not health-checked)' : 'rolled back')
        : pill('bad', r.pending ? 'STILL RUNNING' : 'ROLLBACK FAILED');
      return `<tr data-target="${esc(x.name)}" data-ok="${r.ok}"><td class="mono">${esc(x.name)}</td><td>${esc(x.stage ?? '—')}</td><td><code>${esc(r.to ?? '(none: stack stopped)')}</code>${r.infraSnapshot ? ` + snapshot <code>${esc(r.infraSnapshot)}</code>` : ''}</td><td>${res}</td><td>${d(r.durationMs)}</td><td><code>${esc(x.after ?? '—')}</code> (${esc(x.state)})</td><td class="msg">${r.error ? `${esc(r.error.class)}: ${esc(r.error.message)}` : ''}</td></tr>`;
    })
    .join('');
  const failed = rb.filter((x) => !x.rollback!.ok).length;
  return `<section id="rollbacks"><h2>Rollbacks <span class="muted">(${rb.length - failed} ok${failed ? `, ${failed} failed` : ''})</span></h2><table><thead><tr><th>target</th><th>stage</th><th>rolled back to</th><th>result</th><th>took</th><th>now on</th><th>error</th></tr></thead><tbody>${body}</tbody></table>${rb.length > MAX_FAILURES_LISTED ? `<p class="muted">${rb.length - MAX_FAILURES_LISTED} more in the target table.</p>` : ''}</section>`;
}

function phasesSection(r: Report, phases: PhaseReport[]): string {
  const t0 = Date.parse(r.startedAt);
  const offset = (iso: string) => {
    const t = Date.parse(iso);
    return Number.isNaN(t) || Number.isNaN(t0) ? esc(fmtTime(iso)) : `+${fmtDuration(Math.max(0, t - t0))}`;
  };
  const rows = phases
    .map((p) => {
      const hosts = Array.isArray(p.hosts) ? p.hosts : [];
      const work = hosts.filter((h) => !isRollbackOnly(h));
      const failed = work.filter((h) => !h.ok).length;
      const tests = p.tests
        ? p.tests.ok
          ? pill('ok', 'tests passed')
          : pill('failed', `tests failed (exit ${p.tests.exitCode ?? '—'})`)
        : '';
      const stopped = r.error?.phase === p.name && r.status !== 'success';
      return `<tr data-phase="${esc(p.name)}" data-status="${esc(p.status)}"${stopped ? ' data-stopped="true"' : ''}><td><b>${esc(p.name)}</b> <span class="muted">${esc(p.kind)}</span></td><td>${pill(p.status, String(p.status).replace('_', ' '))} ${stopped ? pill('bad', '✖ failed here') : ''} ${tests}</td><td class="num" title="${esc(fmtTime(p.startedAt))}">${offset(p.startedAt)}</td><td class="num">${d(p.durationMs)}</td><td class="num">${work.length - failed}</td><td class="num">${failed || ''}</td><td class="msg">${p.error ? `${esc(p.error.class)}: ${esc(p.error.message)}` : ''}</td></tr>`;
    })
    .join('');
  return `<section id="phases"><h2>Phases</h2><table><thead><tr><th>phase</th><th>status</th><th class="num">started</th><th class="num">duration</th><th class="num">targets ok</th><th class="num">failed</th><th>error</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

/** Which targets a fleet's timeline draws first when it cannot draw all that need attention. */
const SEVERITY: TargetRow['result'][] = [
  'rollback_failed',
  'rollback_pending',
  'unknown',
  'failed',
  'rolled_back',
];

function timelineSection(r: Report, rows: TargetRow[], waves: WaveReport[]): string {
  const attention = new Set(rows.filter((x) => ATTENTION.has(x.result)).map((x) => x.name));
  const small = rows.length <= ALL_TARGETS_UP_TO;
  const drawn = small
    ? rows.map((x) => x.name)
    : rows
        .filter((x) => attention.has(x.name))
        .sort((a, b) => SEVERITY.indexOf(a.result) - SEVERITY.indexOf(b.result))
        .slice(0, TIMELINE_ATTENTION_ROWS)
        .map((x) => x.name);
  const note = small
    ? ''
    : `<p class="muted">${rows.length} targets: the timeline shows the ${drawn.length} that need attention${attention.size > drawn.length ? ` (of ${attention.size})` : ''}; every target is in the table below.</p>`;
  return `<section id="timeline"><h2>Timeline</h2>${note}${renderTimeline(r, drawn, waves, attention)}</section>`;
}

function checksSection(phases: PhaseReport[], small: boolean): string {
  const checks = phases.flatMap((p) =>
    (Array.isArray(p.hosts) ? p.hosts : []).flatMap((h) =>
      (Array.isArray(h.health) ? h.health : []).map((c) => ({ phase: p.name, host: h.host, c })),
    ),
  );
  if (!checks.length) return '';
  const failed = checks.filter((x) => !x.c.ok);
  const row = (x: (typeof checks)[number]) =>
    `<tr data-target="${esc(x.host)}" data-check="${esc(x.c.check)}" data-ok="${x.c.ok}"><td>${esc(x.phase)}</td><td class="mono">${esc(x.host)}</td><td>${esc(x.c.check)}</td><td>${x.c.ok ? pill('ok', 'healthy') : pill('failed', 'FAILED')}</td><td class="num">${x.c.attempts}</td><td class="num">${d(x.c.durationMs)}</td><td class="num">${x.c.latency ? `${d(x.c.latency.lastMs)} / ${d(x.c.latency.maxMs)}` : '—'}</td><td class="msg">${esc(x.c.lastError ?? '')}</td></tr>`;
  const head =
    '<thead><tr><th>phase</th><th>target</th><th>check</th><th>result</th><th class="num">attempts</th><th class="num">took</th><th class="num">latency last / max</th><th>last error</th></tr></thead>';
  const failedTable = failed.length
    ? `<table id="failed-checks">${head}<tbody>${failed.slice(0, MAX_FAILURES_LISTED).map(row).join('')}</tbody></table>`
    : '';
  const all = small
    ? `<details><summary>All ${checks.length} check results</summary><table id="all-checks">${head}<tbody>${checks.map(row).join('')}</tbody></table></details>`
    : '';
  return `<section id="checks"><h2>Health checks <span class="muted">(${checks.length - failed.length} healthy, ${failed.length} failed)</span></h2>${failedTable}${all}</section>`;
}

function testsSection(phases: PhaseReport[]): string {
  const tests = phases.filter((p) => p.tests);
  if (!tests.length) return '';
  return `<section id="tests"><h2>Tests</h2>${tests
    .map((p) => {
      const t = p.tests!;
      const j = t.junit
        ? ` — ${t.junit.tests} tests: ${t.junit.passed} passed, ${t.junit.failures + t.junit.errors} failed, ${t.junit.skipped} skipped`
        : '';
      return `<div data-phase="${esc(p.name)}"><h3>${esc(p.name)}, on ${esc(t.on)}: ${t.ok ? pill('ok', 'passed') : pill('failed', `failed, exit ${t.exitCode ?? '—'}`)} <span class="muted">${d(t.durationMs)}${esc(j)}</span></h3><details${t.ok ? '' : ' open'}><summary>output (tail)</summary><pre>${esc(tail(t.outputTail))}</pre></details></div>`;
    })
    .join('')}</section>`;
}

/** Columns of the embedded target table; the page script finds them by name. */
const COLUMNS = [
  'target',
  'kind',
  'stage',
  'release',
  'state',
  'result',
  'resultLabel',
  'failedIn',
  'class',
  'error',
  'attempts',
  'checks',
  'rollback',
  'time',
  'attention',
] as const;

function tableData(rows: TargetRow[]): {
  cols: readonly string[];
  rows: (string | number)[][];
  pageSize: number;
} {
  return {
    cols: COLUMNS,
    pageSize: PAGE_SIZE,
    rows: rows.map((x) => [
      x.name,
      x.kind ?? '',
      x.stage ?? '',
      `${x.before ?? '—'} → ${x.after ?? '—'}`,
      x.state,
      x.result,
      RESULT_LABEL[x.result],
      x.failedPhase ?? '',
      x.error?.class ?? '',
      x.error?.message ?? '',
      x.attempts || '',
      x.checks ? `${x.checksOk}/${x.checks}` : '',
      x.rollback
        ? `${x.rollback.ok ? 'to' : 'FAILED, to'} ${x.rollback.to ?? '(none)'} in ${fmtDuration(x.rollback.durationMs ?? 0)}`
        : '',
      fmtDuration(x.durationMs),
      ATTENTION.has(x.result) ? 1 : 0,
    ]),
  };
}

function targetsSection(rows: TargetRow[]): string {
  const attention = rows.filter((x) => ATTENTION.has(x.result)).length;
  const results = countBy(rows, (x) => x.result);
  const classes = countBy(rows, (x) => x.error?.class);
  const options = [
    `<option value="">all targets (${rows.length})</option>`,
    `<option value="attention">needing attention (${attention})</option>`,
    ...results.map(
      ([k, n]) =>
        `<option value="result:${esc(k)}">${esc(RESULT_LABEL[k as TargetRow['result']] ?? k)} (${n})</option>`,
    ),
    ...classes.map(([k, n]) => `<option value="class:${esc(k)}">class ${esc(k)} (${n})</option>`),
  ].join('');
  const counts = [
    countTable(
      'result',
      'count-result',
      results.map(([k, n]) => [RESULT_LABEL[k as TargetRow['result']] ?? k, n]),
    ),
    countTable(
      'final state',
      'count-state',
      countBy(rows, (x) => x.state),
    ),
    countTable(
      'stage',
      'count-stage',
      countBy(rows, (x) => x.stage ?? '—'),
    ),
    rows.some((x) => x.kind)
      ? countTable(
          'kind',
          'count-kind',
          countBy(rows, (x) => x.kind ?? '—'),
        )
      : '',
  ].join('');
  return `<section id="targets"><h2>Targets <span class="muted">(${rows.length})</span></h2>
<div class="count-grid">${counts}</div>
<div class="filter"><label>Search targets <input id="hd-q" type="search" autocomplete="off" placeholder="name, stage, class, message…"></label>
<label>Show <select id="hd-filter">${options}</select></label></div>
<details id="hd-all"><summary>Table of all ${rows.length} targets</summary>
<noscript><p>The table is built by the page's script; with scripts off, the JSON report has every target.</p></noscript>
<p id="hd-count" class="muted"></p>
<table id="hd-table"><thead><tr><th>target</th><th>kind</th><th>stage</th><th>release before → after</th><th>result</th><th>failed in</th><th>class</th><th>error</th><th class="num">attempts</th><th class="num">checks</th><th>rollback</th><th class="num">time</th></tr></thead><tbody id="hd-rows"></tbody></table>
<button type="button" id="hd-more" hidden>show more</button>
</details>
<script type="application/json" id="hd-targets">${jsonForScript(tableData(rows))}</script>
</section>`;
}

function detailSection(r: Report, rows: TargetRow[]): string {
  if (rows.length > ALL_TARGETS_UP_TO) return '';
  const phases = phasesOf(r);
  const body = rows
    .map((x) => {
      const parts = phases.flatMap((p) =>
        (Array.isArray(p.hosts) ? p.hosts : [])
          .filter((e) => e.host === x.name)
          .map((e) => {
            const steps = (Array.isArray(e.steps) ? e.steps : [])
              .map(
                (s) =>
                  `<tr data-step="${esc(s.name)}"><td>${esc(s.name)}</td><td>${s.ok ? pill('ok', 'ok') : pill('failed', 'failed')}</td><td class="num">${esc(s.exitCode ?? '—')}</td><td class="num">${d(s.durationMs)}</td><td class="msg">${s.command ? `<code>${esc(s.command)}</code>` : ''}${s.output ? `<details${s.ok ? '' : ' open'}><summary>output</summary><pre>${esc(tail(s.output))}</pre></details>` : ''}</td></tr>`,
              )
              .join('');
            const attempts = (Array.isArray(e.attempts) ? e.attempts : [])
              .map(
                (a) =>
                  `<li>attempt ${a.attempt}: ${a.ok ? 'ok' : 'failed'} in ${d(a.durationMs)}${a.delayBeforeMs ? ` after waiting ${d(a.delayBeforeMs)}` : ''}${a.error ? ` — ${esc(a.error.class)}: ${esc(a.error.message)}` : ''}</li>`,
              )
              .join('');
            const detail =
              e.detail && typeof e.detail === 'object'
                ? Object.entries(e.detail)
                    .map(([k, v]) => `${esc(k)}=<code>${esc(v)}</code>`)
                    .join(' · ')
                : '';
            const rb = e.rollback
              ? `<p>${e.rollback.ok ? pill('rb', 'rolled back') : pill('bad', 'ROLLBACK FAILED')} to <code>${esc(e.rollback.to ?? '(none)')}</code> in ${d(e.rollback.durationMs)}${e.rollback.error ? ` — ${esc(e.rollback.error.class)}: ${esc(e.rollback.error.message)}` : ''}</p>`
              : '';
            return `<div class="phase-detail" data-phase="${esc(p.name)}"><h4>${esc(p.name)} ${e.ok ? pill('ok', 'ok') : pill('failed', 'failed')} <span class="muted">${d(e.durationMs)}</span></h4>${attempts.length && (e.attempts?.length ?? 0) > 1 ? `<ul>${attempts}</ul>` : ''}${e.error ? `<p class="msg"><b>${esc(e.error.class)}</b>: ${esc(e.error.message)}</p>` : ''}${steps ? `<table class="steps"><thead><tr><th>step</th><th>result</th><th class="num">exit</th><th class="num">took</th><th>command / output</th></tr></thead><tbody>${steps}</tbody></table>` : ''}${rb}${detail ? `<p class="muted">${detail}</p>` : ''}</div>`;
          }),
      );
      return `<details class="target-detail" data-target="${esc(x.name)}"${ATTENTION.has(x.result) ? ' open' : ''}><summary>${esc(x.name)} ${resultPill(x.result)} <span class="muted">${esc(x.stage ?? '')}</span></summary>${parts.join('')}</details>`;
    })
    .join('');
  return `<section id="details"><h2>Per target</h2>${body}</section>`;
}

function auditSection(r: Report): string {
  const audit = Array.isArray(r.audit) ? r.audit : [];
  if (!audit.length) return '';
  const shown = audit.slice(-MAX_AUDIT_LINES);
  return `<section id="audit"><h2>Audit</h2><details><summary>${audit.length} audit record(s)${audit.length > shown.length ? `, the last ${shown.length} shown` : ''}</summary><table><thead><tr><th>time</th><th>action</th><th>target</th><th>detail</th></tr></thead><tbody>${shown
    .map(
      (a) =>
        `<tr><td class="mono">${esc(fmtTime(a.time))}</td><td>${esc(a.action)}</td><td class="mono">${esc(a.host)}</td><td>${esc(a.detail ?? '')}</td></tr>`,
    )
    .join('')}</tbody></table></details></section>`;
}

const PAGE_CSS = `
.escalation { font-weight: 700; color: var(--bad); margin-bottom: 6px; }
.error { margin: 8px 0 4px; font-size: 15px; word-break: break-word; }
.alarm ul { margin: 6px 0 0; padding-left: 20px; }
.alarm code { color: inherit; }
.count-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 0 16px; }
.filter { display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: center; margin: 8px 0; }
.filter input, .filter select, button { font: inherit; padding: 4px 8px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
.filter input { min-width: 280px; }
.wbar { display: flex; width: 140px; height: 12px; background: var(--track); border-radius: 3px; overflow: hidden; }
.wbar i.ok { background: var(--ok); } .wbar i.failed { background: var(--bad); }
.phase-detail { margin: 4px 0 10px 14px; }
.phase-detail h4 { margin: 8px 0 4px; font-size: 14px; }
details.target-detail { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; }
`;

/**
 * The table script: builds rows from the embedded data only when the table is opened or searched, a page at a
 * time, with textContent so no data is ever parsed as HTML.
 */
const SCRIPT = `(function () {
  var $ = function (id) { return document.getElementById(id); };
  var data = JSON.parse($('hd-targets').textContent);
  var col = function (name) { return data.cols.indexOf(name); };
  var C = { target: col('target'), result: col('result'), cls: col('class'), att: col('attention') };
  var SHOW = ['target', 'kind', 'stage', 'release', 'resultLabel', 'failedIn', 'class', 'error', 'attempts', 'checks', 'rollback', 'time'].map(col);
  var NUM = { attempts: 1, checks: 1, time: 1 };
  var PILL = { ok: 'ok', unchanged: 'ok', rolled_back: 'rb', untouched: 'skipped', unknown: 'warn' };
  var box = $('hd-all'), q = $('hd-q'), filter = $('hd-filter'), body = $('hd-rows'), count = $('hd-count'), more = $('hd-more');
  var text = null, shown = data.pageSize;
  function hay() {
    if (!text) text = data.rows.map(function (r) { return r.join(' ').toLowerCase(); });
    return text;
  }
  function keep(i, terms, f) {
    var r = data.rows[i];
    if (f === 'attention' && !r[C.att]) return false;
    if (f.indexOf('result:') === 0 && r[C.result] !== f.slice(7)) return false;
    if (f.indexOf('class:') === 0 && r[C.cls] !== f.slice(6)) return false;
    for (var k = 0; k < terms.length; k++) if (hay()[i].indexOf(terms[k]) < 0) return false;
    return true;
  }
  function row(r) {
    var tr = document.createElement('tr');
    tr.setAttribute('data-target', r[C.target]);
    tr.setAttribute('data-result', r[C.result]);
    SHOW.forEach(function (c) {
      var td = document.createElement('td');
      var name = data.cols[c];
      if (NUM[name]) td.className = 'num';
      if (name === 'resultLabel') {
        var s = document.createElement('span');
        s.className = 'pill ' + (PILL[r[C.result]] || 'bad');
        s.textContent = r[c];
        td.appendChild(s);
      } else {
        td.textContent = String(r[c]);
        if (name === 'target') td.className = 'mono';
        if (name === 'error') td.className = 'msg';
      }
      tr.appendChild(td);
    });
    return tr;
  }
  function render() {
    var terms = q.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var f = filter.value, hits = [];
    for (var i = 0; i < data.rows.length; i++) if (keep(i, terms, f)) hits.push(i);
    var frag = document.createDocumentFragment();
    hits.slice(0, shown).forEach(function (i) { frag.appendChild(row(data.rows[i])); });
    body.replaceChildren(frag);
    count.textContent = hits.length + ' of ' + data.rows.length + ' targets' + (hits.length > shown ? ', the first ' + shown + ' shown' : '');
    more.hidden = hits.length <= shown;
  }
  function changed() {
    shown = data.pageSize;
    if (box.open) render(); else box.open = true;
  }
  box.addEventListener('toggle', function () { if (box.open) render(); });
  q.addEventListener('input', changed);
  filter.addEventListener('change', changed);
  more.addEventListener('click', function () { shown += data.pageSize; render(); });
})();`;

/** The HTML page of one run's report. Pure: the same report gives the same page. */
export function renderReportHtml(report: Report): string {
  const rows = targetRows(report);
  const fails = failures(report);
  const waves = wavesOf(report);
  const phases = phasesOf(report);
  const body = [
    header(report, rows, waves),
    cards(rows, fails),
    wavesSection(waves),
    failuresSection(fails),
    rollbacksSection(rows),
    phasesSection(report, phases),
    timelineSection(report, rows, waves),
    checksSection(phases, rows.length <= ALL_TARGETS_UP_TO),
    testsSection(phases),
    targetsSection(rows),
    detailSection(report, rows),
    auditSection(report),
    `<footer class="muted"><p>homelab-deploy report, schema ${esc(report.schema)} · finished ${esc(fmtTime(report.finishedAt))}</p></footer>`,
  ].join('\n');
  return htmlPage({
    title: `${HEADLINE[report.status] ?? report.status} — ${report.project} ${report.release?.id ?? ''}`,
    body,
    css: TIMELINE_CSS + PAGE_CSS,
    script: SCRIPT,
  });
}
