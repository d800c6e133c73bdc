import { esc, fmtDuration } from './html-kit';
import { isRollbackOnly, phasesOf, type WaveReport } from './html-model';
import type { HostPhaseReport, Report, RollbackReport } from './types';

/**
 * The phase timeline: one row for the run's phases, one per wave group when waves carry times, and one per target
 * with a bar per phase it took part in (attempts and the waits between them apart), its tests and its rollback.
 * Bars are positioned in percent of the run, so the chart is plain CSS and scales with the window.
 */

export type SegmentKind =
  'ok' | 'failed' | 'wait' | 'rollback' | 'rollback-failed' | 'tests' | 'skipped' | 'rolled_back';

interface Segment {
  start: number;
  end: number;
  kind: SegmentKind;
  label: string;
  title: string;
  phase?: string;
}

const ms = (iso: unknown) => (typeof iso === 'string' ? Date.parse(iso) : NaN);
const dur = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);

/** When each rollback of a target ended, from the audit trail (the report has no rollback start times). */
function rollbackEnds(r: Report): Map<string, number[]> {
  const ends = new Map<string, number[]>();
  for (const a of Array.isArray(r.audit) ? r.audit : [])
    if (a.action === 'rollback' && !Number.isNaN(ms(a.time)))
      ends.set(a.host, [...(ends.get(a.host) ?? []), ms(a.time)]);
  return ends;
}

function rollbackSegment(target: string, phase: string, rb: RollbackReport, end: number): Segment {
  const failed = !rb.ok;
  const what = failed ? (rb.pending ? 'rollback still running' : 'ROLLBACK FAILED') : 'rollback';
  return {
    start: end - dur(rb.durationMs),
    end,
    kind: failed ? 'rollback-failed' : 'rollback',
    label: failed ? '↶ ✖' : '↶',
    title: `${target}: ${what} to ${rb.to ?? '(nothing: stack stopped)'} after ${phase}, ${fmtDuration(dur(rb.durationMs))}${rb.error ? ` — ${rb.error.class}: ${rb.error.message}` : ''}`,
    phase,
  };
}

function workSegments(target: string, phase: string, start: number, e: HostPhaseReport): Segment[] {
  const attempts = Array.isArray(e.attempts) ? e.attempts : [];
  const status = e.ok ? 'ok' : 'failed';
  if (attempts.length <= 1)
    return [
      {
        start,
        end: start + dur(e.durationMs),
        kind: status,
        label: `${phase}${e.ok ? '' : ' ✖'}`,
        title: `${target} · ${phase}: ${e.ok ? 'ok' : `FAILED${e.error ? ` (${e.error.class}: ${e.error.message})` : ''}`}, ${fmtDuration(dur(e.durationMs))}`,
        phase,
      },
    ];
  const out: Segment[] = [];
  let t = start;
  for (const a of attempts) {
    const wait = dur(a.delayBeforeMs);
    if (wait) {
      out.push({
        start: t,
        end: t + wait,
        kind: 'wait',
        label: '',
        title: `${target} · ${phase}: waited ${fmtDuration(wait)} before attempt ${a.attempt}`,
        phase,
      });
      t += wait;
    }
    out.push({
      start: t,
      end: t + dur(a.durationMs),
      kind: a.ok ? 'ok' : 'failed',
      label: `${phase} #${a.attempt}${a.ok ? '' : ' ✖'}`,
      title: `${target} · ${phase} attempt ${a.attempt} of ${attempts.length}: ${a.ok ? 'ok' : `failed${a.error ? ` (${a.error.class}: ${a.error.message})` : ''}`}, ${fmtDuration(dur(a.durationMs))}`,
      phase,
    });
    t += dur(a.durationMs);
  }
  return out;
}

/** The segments of every target, keyed by name, in the order the targets appear in the phases. */
export function targetSegments(r: Report): Map<string, Segment[]> {
  const rows = new Map<string, Segment[]>();
  const add = (target: string, s: Segment) => rows.set(target, [...(rows.get(target) ?? []), s]);
  const ends = rollbackEnds(r);
  const drawnRollback = new Set<string>();
  const nextEnd = (target: string, fallback: number) => {
    const list = ends.get(target);
    return list && list.length ? list.shift()! : fallback;
  };
  for (const p of phasesOf(r)) {
    const pStart = ms(p.startedAt);
    if (Number.isNaN(pStart)) continue;
    const pEnd = pStart + dur(p.durationMs);
    let lastWorkEnd = pStart;
    for (const e of Array.isArray(p.hosts) ? p.hosts : []) {
      if (!isRollbackOnly(e)) {
        const own = ms((e as { startedAt?: unknown }).startedAt);
        const start = Number.isNaN(own) ? pStart : own;
        for (const s of workSegments(e.host, p.name, start, e)) add(e.host, s);
        lastWorkEnd = Math.max(lastWorkEnd, start + dur(e.durationMs));
      }
      if (e.rollback) {
        drawnRollback.add(e.host);
        add(e.host, rollbackSegment(e.host, p.name, e.rollback, nextEnd(e.host, pEnd)));
      }
    }
    if (p.tests && typeof p.tests.on === 'string') {
      // Tests start once the stage's targets are up; the report keeps their duration only.
      const t = p.tests;
      add(t.on, {
        start: lastWorkEnd,
        end: lastWorkEnd + dur(t.durationMs),
        kind: t.ok ? 'tests' : 'failed',
        label: t.ok ? 'tests' : 'tests ✖',
        title: `tests on ${t.on} after ${p.name}: ${t.ok ? 'passed' : `FAILED, exit ${t.exitCode}`}, ${fmtDuration(dur(t.durationMs))}`,
        phase: p.name,
      });
    }
  }
  const finish = ms(r.finishedAt);
  for (const f of Array.isArray(r.hosts) ? r.hosts : [])
    if (f.rollback && !drawnRollback.has(f.host))
      add(f.host, rollbackSegment(f.host, f.stage ?? 'run', f.rollback, nextEnd(f.host, finish)));
  return rows;
}

function runSegments(r: Report): Segment[] {
  const stoppedAt = r.error?.phase;
  return phasesOf(r).flatMap((p) => {
    const start = ms(p.startedAt);
    if (Number.isNaN(start)) return [];
    // The phase the run failed in is red even when its status says it was rolled back afterwards.
    const kind: SegmentKind =
      p.status === 'failed' || p.name === stoppedAt
        ? 'failed'
        : p.status === 'skipped'
          ? 'skipped'
          : p.status === 'rolled_back'
            ? 'rolled_back'
            : 'ok';
    return [
      {
        start,
        end: start + dur(p.durationMs),
        kind,
        label: `${p.name}${kind === 'failed' ? ' ✖' : ''}`,
        title: `${p.name}: ${p.status.replace('_', ' ')}, ${fmtDuration(dur(p.durationMs))}${p.error ? ` — ${p.error.class}: ${p.error.message}` : ''}`,
        phase: p.name,
      },
    ];
  });
}

function waveSegments(waves: WaveReport[]): Segment[] {
  return waves.flatMap((w) => {
    const start = ms(w.startedAt);
    if (Number.isNaN(start) || w.durationMs === undefined) return [];
    const bad = (w.failed ?? 0) > 0 || w.budget?.exceeded;
    return [
      {
        start,
        end: start + dur(w.durationMs),
        kind: bad ? 'failed' : 'ok',
        label: `wave ${w.index}`,
        title: `${w.stage} wave ${w.index}: ${w.ok ?? '?'} ok, ${w.failed ?? '?'} failed, ${fmtDuration(dur(w.durationMs))}`,
        phase: w.stage,
      },
    ];
  });
}

/** Tick labels in one unit across the axis: `0ms 200ms 400ms`, `0s 0.5s 1s`, `0s 30s 60s`, `0m 5m 10m`. */
function tickLabel(t: number, step: number): string {
  if (step < 100) return `${t}ms`;
  if (step < 60_000) return `${t / 1000}s`;
  return `${t / 60_000}m`;
}

/** Steps a person counts in: round milliseconds, seconds, minutes, hours. */
const TICK_STEPS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
  600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];

/** The smallest step that gives at most 8 ticks over the span. */
function tickStep(spanMs: number): number {
  return TICK_STEPS.find((s) => spanMs / s <= 8) ?? Math.ceil(spanMs / 8);
}

export const TIMELINE_CSS = `
.tl { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px 8px; overflow-x: auto; }
.tl-row { display: grid; grid-template-columns: minmax(110px, 200px) 1fr; align-items: center; min-height: 22px; min-width: 640px; }
.tl-row.run { border-bottom: 1px dashed var(--line); padding-bottom: 3px; margin-bottom: 3px; }
.tl-label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; padding-right: 8px; font-size: 12px; }
.tl-label.attn { color: var(--bad); font-weight: 600; }
.tl-track { position: relative; height: 18px; background: var(--track); border-radius: 3px; }
.tl-axis .tl-track { background: none; height: 16px; }
.tick { position: absolute; top: 0; font-size: 10.5px; color: var(--muted); transform: translateX(-50%); white-space: nowrap; }
.tick::after { content: ""; position: absolute; left: 50%; top: 14px; height: 4px; border-left: 1px solid var(--muted); }
.seg { position: absolute; top: 1px; bottom: 1px; min-width: 3px; border-radius: 2px; font-size: 10.5px; line-height: 16px;
  color: var(--bg); overflow: hidden; white-space: nowrap; text-overflow: clip; padding: 0 3px; }
.seg.ok { background: var(--ok); }
.seg.failed { background: var(--bad); font-weight: 700; }
.seg.wait { background: repeating-linear-gradient(135deg, var(--skip) 0 3px, transparent 3px 6px); }
.seg.rollback { background: var(--rb); }
.seg.rollback-failed { background: var(--bad); outline: 2px solid var(--fg); font-weight: 700; z-index: 1; }
.seg.tests { background: var(--info); }
.seg.skipped { background: var(--skip); }
.seg.rolled_back { background: var(--warn); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: var(--muted); margin: 6px 0 0; }
.legend i { display: inline-block; width: 14px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; position: static; }
`;

const LEGEND: [SegmentKind, string][] = [
  ['ok', 'ok'],
  ['failed', 'failed'],
  ['wait', 'retry wait'],
  ['tests', 'tests'],
  ['rollback', 'rollback'],
  ['rollback-failed', 'rollback failed'],
  ['rolled_back', 'phase rolled back'],
  ['skipped', 'skipped'],
];

/**
 * The timeline for the given targets (the page chooses which: all of a small run, the ones that need attention
 * in a fleet).
 */
export function renderTimeline(
  r: Report,
  targets: string[],
  waves: WaveReport[],
  attention: ReadonlySet<string>,
): string {
  const segs = targetSegments(r);
  const run = runSegments(r);
  const waveSegs = waveSegments(waves);
  const all = [...run, ...waveSegs, ...targets.flatMap((t) => segs.get(t) ?? [])];
  const startedAt = ms(r.startedAt);
  const t0 = Math.min(...all.map((s) => s.start), Number.isNaN(startedAt) ? Infinity : startedAt);
  const finishedAt = ms(r.finishedAt);
  const t1 = Math.max(...all.map((s) => s.end), Number.isNaN(finishedAt) ? -Infinity : finishedAt);
  if (!all.length || !Number.isFinite(t0) || !Number.isFinite(t1))
    return '<p class="muted">No phase has a start time.</p>';
  const span = Math.max(t1 - t0, 1);
  const x = (t: number) => Math.min(100, Math.max(0, ((t - t0) / span) * 100));
  const bar = (s: Segment) =>
    `<div class="seg ${s.kind}"${s.phase ? ` data-phase="${esc(s.phase)}"` : ''} data-kind="${s.kind}" style="left:${x(s.start).toFixed(3)}%;width:${Math.max(0, x(s.end) - x(s.start)).toFixed(3)}%" title="${esc(s.title)}">${esc(s.label)}</div>`;
  const step = tickStep(span);
  const ticks: string[] = [];
  for (let t = 0; t <= span; t += step)
    ticks.push(`<span class="tick" style="left:${x(t0 + t).toFixed(3)}%">${esc(tickLabel(t, step))}</span>`);
  const rows: string[] = [
    `<div class="tl-row tl-axis"><div class="tl-label muted">time since start</div><div class="tl-track">${ticks.join('')}</div></div>`,
    `<div class="tl-row run" data-row="run"><div class="tl-label"><b>run</b></div><div class="tl-track">${run.map(bar).join('')}</div></div>`,
  ];
  const waveStages = [...new Set(waves.map((w) => w.stage))];
  for (const stage of waveStages) {
    const ws = waveSegs.filter((s) => s.phase === stage);
    if (ws.length)
      rows.push(
        `<div class="tl-row run" data-row="waves"><div class="tl-label" title="${esc(`waves of ${stage}`)}">waves · ${esc(stage)}</div><div class="tl-track">${ws.map(bar).join('')}</div></div>`,
      );
  }
  for (const t of targets)
    rows.push(
      `<div class="tl-row" data-target="${esc(t)}"><div class="tl-label${attention.has(t) ? ' attn' : ''}" title="${esc(t)}">${esc(t)}</div><div class="tl-track">${(segs.get(t) ?? []).map(bar).join('')}</div></div>`,
    );
  const legend = LEGEND.map(([k, l]) => `<span><i class="seg ${k}"></i>${l}</span>`).join('');
  return `<div class="tl">${rows.join('\n')}</div><div class="legend">${legend}</div>`;
}
