import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Report } from '../report/types';

/**
 * GitHub cuts a job output above 1 MB (and the run's outputs above 50 MB in all); leave room for the other
 * outputs and the file-command framing.
 */
export const REPORT_OUTPUT_LIMIT = 900_000;

export type ReportOutput = Report & {
  truncated?: { reason: string; reportFile: string; omitted: string[] };
};

const bytes = (s: string) => Buffer.byteLength(s);

/**
 * The `report` output: the whole report when it fits, else the same shape with the bulky parts left out, step by
 * step (per-host phase details and audit first, then hosts that ended fine, then the host lists), and a
 * `truncated` note naming the file that has everything. `fromJSON(...).status` and friends keep working.
 */
export function reportOutput(
  report: Report,
  reportFile: string,
  limit = REPORT_OUTPUT_LIMIT,
): { json: string; compacted: boolean } {
  const full = JSON.stringify(report);
  if (bytes(full) <= limit) return { json: full, compacted: false };
  const omitted: string[] = [];
  const note = () => ({
    reason: `the report is ${bytes(full)} bytes; outputs are limited to about 1 MB, so this output is compacted`,
    reportFile,
    omitted: [...omitted],
  });
  let out: ReportOutput = {
    ...report,
    phases: report.phases.map((p) => ({
      ...p,
      hosts: [],
      tests: p.tests && { ...p.tests, outputTail: '' },
    })),
    audit: [],
  };
  omitted.push('phases[].hosts', 'phases[].tests.outputTail', 'audit');
  const steps: (() => void)[] = [
    () => {
      out = { ...out, hosts: out.hosts.filter((h) => h.rollback || !['new', 'unchanged'].includes(h.state)) };
      omitted.push('hosts that ended on the new release (see systemsDeployed)');
    },
    () => {
      out = { ...out, hosts: [] };
      omitted.push('hosts');
    },
    () => {
      out = { ...out, systemsDeployed: [], phases: out.phases.map((p) => ({ ...p, tests: undefined })) };
      omitted.push('systemsDeployed (see the systems-deployed output)', 'phases[].tests');
    },
  ];
  let json = JSON.stringify({ ...out, truncated: note() });
  for (const step of steps) {
    if (bytes(json) <= limit) break;
    step();
    json = JSON.stringify({ ...out, truncated: note() });
  }
  return { json, compacted: true };
}

/**
 * Report files named by `merge-reports`: files, directories (every *.json in them) or `dir/*.json`-style patterns
 * with `*` in the last segment, relative to the workspace; sorted and without duplicates.
 */
export function findReportFiles(specs: string[], workspace: string): string[] {
  const found = new Set<string>();
  for (const spec of specs) {
    const abs = path.resolve(workspace, spec);
    const base = path.basename(abs);
    const dir = path.dirname(abs);
    if (dir.includes('*'))
      throw new Error(`merge-reports: "*" is supported in the file name only, got ${JSON.stringify(spec)}.`);
    if (base.includes('*')) {
      const re = new RegExp(
        '^' +
          base
            .split('*')
            .map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
            .join('.*') +
          '$',
      );
      if (fs.existsSync(dir))
        for (const f of fs.readdirSync(dir)) if (re.test(f)) found.add(path.join(dir, f));
    } else if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) {
      for (const f of fs.readdirSync(abs)) if (f.endsWith('.json')) found.add(path.join(abs, f));
    } else if (fs.existsSync(abs)) found.add(abs);
    else throw new Error(`merge-reports: no such file or directory: ${JSON.stringify(spec)}.`);
  }
  return [...found].sort();
}
