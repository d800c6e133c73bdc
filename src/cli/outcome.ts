import * as fs from 'node:fs';
import * as path from 'node:path';
import { isFailure } from '../report/status';
import { renderReportText } from '../report/text';
import type { Report } from '../report/types';
import type { CliIo } from './io';

/** "A target needs a human": a rollback failed, or nobody could read what a target runs. */
export const EXIT_NEEDS_ATTENTION = 3;

/** 3 when a target needs a human (it outranks the status: someone must look), 1 for a failed run, else 0. */
export function exitCodeOf(report: Pick<Report, 'status' | 'needsAttention'>): number {
  if (report.needsAttention?.length) return EXIT_NEEDS_ATTENTION;
  return isFailure(report.status) ? 1 : 0;
}

/** Writes next to the destination, then renames: a reader never sees half a file, a crash leaves the old one. */
export function writeFileAtomic(file: string, data: string): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** The lines that say, loudly, which targets a human has to look at and how. */
export function attentionLines(report: Report): string[] {
  const names = report.needsAttention ?? [];
  if (!names.length) return [];
  const why = (host: string) => {
    const h = report.hosts.find((x) => x.host === host);
    if (h?.rollback && !h.rollback.ok)
      return `rollback to ${h.rollback.to ?? '(none)'} FAILED${h.rollback.error ? `: ${h.rollback.error.message}` : ''}; it runs ${h.after ?? 'nothing'}`;
    if (h?.state === 'unknown') return 'its state is unknown (it could not be read back)';
    return 'see the report';
  };
  const shown = names.slice(0, 20);
  return [
    `⚠ NEEDS A HUMAN: ${names.length} target${names.length === 1 ? '' : 's'}: ${names.join(', ')}`,
    ...shown.map((n) => `    ${n}: ${why(n)}`),
    ...(names.length > shown.length ? [`    ... ${names.length - shown.length} more in the report`] : []),
    '    check them with `homelab-deploy status`, then `homelab-deploy rollback --to <release> --targets ...` or redeploy',
  ];
}

/** A run's or rollback's result: the report file, the report on stdout (JSON or text), and the exit code. */
export function finishReport(
  report: Report,
  values: { json: boolean; reportFile?: string },
  io: CliIo,
): number {
  const json = JSON.stringify(report, null, 2);
  if (values.reportFile) writeFileAtomic(values.reportFile, json + '\n');
  if (values.json) io.out.write(json + '\n');
  else io.out.write([renderReportText(report), ...attentionLines(report)].join('\n') + '\n');
  // With --json stdout is for machines; the warning still reaches the person on stderr.
  if (values.json && report.needsAttention?.length) io.err.write(attentionLines(report).join('\n') + '\n');
  return exitCodeOf(report);
}
