import type { Count, Measurement, Timing } from '../scenarios/types';

export interface Table {
  header: string[];
  /** true = right-aligned (numbers) */
  right: boolean[];
  rows: string[][];
}

const dash = '–';

function fixed(v: number | undefined, digits: number): string {
  return v === undefined || !Number.isFinite(v) ? dash : v.toFixed(digits);
}

/**
 * One row per measurement. The ratio is wall time over the baseline's in the same scenario, N and run, and is
 * only given when both sides finished with every host right.
 */
export function measurementTable(ms: Measurement[]): Table {
  const baseline = new Map<string, number>();
  // The first baseline row of a scenario is the plain one: property-cost lists variants with properties after it.
  for (const m of ms)
    if (m.family === 'baseline' && m.figures && !m.failure && !baseline.has(`${m.what}/${m.n}`))
      baseline.set(`${m.what}/${m.n}`, m.figures.wallMs);
  const rows = ms.map((m) => {
    const f = m.figures;
    const base = baseline.get(`${m.what}/${m.n}`);
    const ratio = m.family === 'homelab' && f && !m.failure && base ? f.wallMs / base : undefined;
    return [
      m.what,
      m.tool,
      String(m.n),
      fixed(f && f.wallMs / 1000, 2),
      fixed(f && f.wallMs / 1000 / m.n, 3),
      ratio === undefined ? dash : `${ratio.toFixed(2)}x`,
      fixed(f && f.peakRssKib / 1024, 0),
      fixed(f?.clientCpuSeconds, 2),
      fixed(f?.serverCpuSeconds, 2),
      fixed(f && f.hostProcesses / m.n, 1),
      fixed(f?.load1, 1),
      `${m.failure ? 'FAILED ' : ''}${m.verifiedHosts === undefined ? (m.failure ? '' : dash) : `${m.verifiedHosts}/${m.n}`}`.trim(),
    ];
  });
  return {
    header: [
      'scenario',
      'tool',
      'N',
      'wall s',
      's/host',
      'vs baseline',
      'peak RSS MB',
      'client CPU s',
      'server CPU s',
      'host procs/host',
      'load',
      'verified',
    ],
    right: [false, false, true, true, true, true, true, true, true, true, true, false],
    rows,
  };
}

export function timingTable(ts: Timing[]): Table {
  return {
    header: ['tool', 'what', 's'],
    right: [false, false, true],
    rows: ts.map((t) => [t.tool, t.label, t.seconds.toFixed(2)]),
  };
}

export function countTable(cs: Count[]): Table {
  return {
    header: ['tool', 'what', 'count'],
    right: [false, false, true],
    rows: cs.map((c) => [c.tool, c.label, Number.isInteger(c.value) ? String(c.value) : c.value.toFixed(1)]),
  };
}

export function renderText(t: Table): string {
  const width = t.header.map((h, i) => Math.max(h.length, ...t.rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (t.right[i] ? c.padStart(width[i]) : c.padEnd(width[i])))
      .join('  ')
      .trimEnd();
  return [line(t.header), line(width.map((w) => '-'.repeat(w))), ...t.rows.map(line)].join('\n');
}

export function renderMarkdown(t: Table): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [
    `| ${t.header.map(esc).join(' | ')} |`,
    `|${t.right.map((r) => (r ? '---:' : '---')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}
