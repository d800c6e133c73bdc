import * as fs from 'node:fs';
import * as path from 'node:path';

/** Results of the fault matrix, one JSON line per cell, shared by the suite's files and its global teardown. */

export const RESULTS = path.join(__dirname, 'output', 'results.jsonl');

export interface CellResult {
  fault: string;
  phase: string;
  ok: boolean;
  seconds: number;
  error?: string;
}

export function recordCell(r: CellResult): void {
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.appendFileSync(RESULTS, JSON.stringify(r) + '\n');
}

export function readResults(): CellResult[] {
  if (!fs.existsSync(RESULTS)) return [];
  return fs
    .readFileSync(RESULTS, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as CellResult);
}

/** Columns in the order a deploy meets them; phases not listed go last. */
const PHASE_ORDER = [
  'preflight',
  'secrets',
  'upload',
  'up',
  'tests',
  'production (up)',
  'rollback',
  'public (retry)',
  'public (reconnect)',
  'whole run',
  'no lock wait',
  'lock wait',
  'commit statuses',
  'success run',
  'rollback run',
];

/** Fault × phase as a Markdown table (pass/FAIL and seconds), then each failure's reason. */
export function renderMatrix(results: CellResult[], totalSeconds?: number): string {
  const faults = [...new Set(results.map((r) => r.fault))];
  const seen = [...new Set(results.map((r) => r.phase))];
  const rank = (p: string) => (PHASE_ORDER.indexOf(p) < 0 ? PHASE_ORDER.length : PHASE_ORDER.indexOf(p));
  const phases = seen.sort((a, b) => rank(a) - rank(b));
  const at = (f: string, p: string) => results.find((r) => r.fault === f && r.phase === p);
  const lines = [
    `| fault \\ phase | ${phases.join(' | ')} |`,
    `|---|${phases.map(() => '---').join('|')}|`,
    ...faults.map(
      (f) =>
        `| ${f} | ${phases
          .map((p) => {
            const r = at(f, p);
            return r ? `${r.ok ? 'pass' : '**FAIL**'} ${r.seconds.toFixed(1)}s` : '';
          })
          .join(' | ')} |`,
    ),
  ];
  const passed = results.filter((r) => r.ok).length;
  const sum = results.reduce((s, r) => s + r.seconds, 0);
  lines.push(
    '',
    `${passed} of ${results.length} cells passed; cells took ${sum.toFixed(0)} s` +
      (totalSeconds === undefined ? '' : `, the suite ${totalSeconds.toFixed(0)} s`),
  );
  const failed = results.filter((r) => !r.ok);
  if (failed.length) {
    lines.push('', 'Failed cells:');
    for (const r of failed)
      lines.push('', `${r.fault} × ${r.phase}:`, ...(r.error ?? '').split('\n').map((l) => `    ${l}`));
  }
  return lines.join('\n') + '\n';
}
