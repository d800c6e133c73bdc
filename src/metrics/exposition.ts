/** Prometheus text exposition format 0.0.4: families with HELP/TYPE, escaped label values. */
export type Labels = Record<string, string>;

export interface Sample {
  labels: Labels;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: Sample[];
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function fmt(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export function render(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    if (f.samples.length === 0) continue;
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      out.push(`${f.name}${labels ? `{${labels}}` : ''} ${fmt(s.value)}`);
    }
  }
  return out.join('\n') + '\n';
}

export interface ParsedSample {
  name: string;
  labels: Labels;
  value: number;
}

const unescapeLabel = (v: string) =>
  v.replace(/\\(\\|n|")/g, (_m, c: string) => (c === 'n' ? '\n' : c === '"' ? '"' : '\\'));

/**
 * Reads samples back from text in this format (comments skipped, timestamps ignored): what a textfile counter
 * needs to carry its value from one run to the next.
 */
export function parseExposition(text: string): ParsedSample[] {
  const out: ParsedSample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/.exec(line.trim());
    if (!m || line.startsWith('#')) continue;
    const labels: Labels = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = unescapeLabel(l[2]);
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value });
  }
  return out;
}

/** Families read back from text in this format, HELP and TYPE included (untyped samples read as gauges). */
export function parseFamilies(text: string): Family[] {
  const meta = new Map<string, { help: string; type: Family['type'] }>();
  for (const m of text.matchAll(/^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/gm)) {
    const f = meta.get(m[2]) ?? { help: '', type: 'gauge' as const };
    if (m[1] === 'HELP') f.help = m[3].replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
    else f.type = m[3].trim() === 'counter' ? 'counter' : 'gauge';
    meta.set(m[2], f);
  }
  const byName = new Map<string, Family>();
  for (const s of parseExposition(text)) {
    let f = byName.get(s.name);
    if (!f)
      byName.set(s.name, (f = { name: s.name, help: '', type: 'gauge', ...meta.get(s.name), samples: [] }));
    f.samples.push({ labels: s.labels, value: s.value });
  }
  return [...byName.values()];
}
