import * as fs from 'node:fs';
import { renderReportHtml } from '../../report/html';
import { renderReportText } from '../../report/text';
import type { Report } from '../../report/types';
import type { Command } from '../command';
import type { CliIo } from '../io';
import { attentionLines, writeFileAtomic } from '../outcome';

const STATUSES = ['success', 'partial_success', 'failed', 'aborted', 'rolled_back'];

/** A report file, or a message naming the file and what is wrong with it. */
export function readReport(file: string): Report | string {
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code === 'ENOENT' ? `${file}: no such file` : `${file}: cannot be read as JSON: ${e.message}`;
  }
  const r = data as Partial<Report> | null;
  if (
    !r ||
    typeof r !== 'object' ||
    r.schema !== 1 ||
    !STATUSES.includes(String(r.status)) ||
    !Array.isArray(r.hosts)
  )
    return `${file} is not a homelab-deploy report (expected "schema": 1, a "status" and "hosts", as run --report-file writes)`;
  return r as Report;
}

/** `--html FILE`: one self-contained page, written whole or not at all. */
export function writeHtml(file: string, html: string, io: CliIo, what: string): void {
  writeFileAtomic(file, html);
  io.err.write(`wrote ${what} to ${file} (${Buffer.byteLength(html)} bytes)\n`);
}

export const report: Command = {
  name: 'report',
  summary: "show a run's JSON report as text, or render it as one self-contained HTML page",
  usage: 'REPORT.json [--html FILE]',
  operands: {
    name: 'REPORT.json',
    help: 'a report written by run/rollback --report-file, the action (report-file) or merge-reports',
    min: 1,
    max: 1,
    complete: 'file',
  },
  options: [
    {
      name: 'html',
      help: 'write the HTML page (phase timeline per target, waves, failures by class, rollbacks) to FILE',
    },
  ],
  examples: ['homelab-deploy report report.json --html report.html', 'homelab-deploy report report.json'],
  async run({ values, operands }, io) {
    const r = readReport(operands[0]);
    if (typeof r === 'string') {
      io.err.write(`report: ${r}\n`);
      return 2;
    }
    if (values.html) writeHtml(values.html, renderReportHtml(r), io, 'the HTML report');
    else io.out.write([renderReportText(r), ...attentionLines(r)].join('\n') + '\n');
    return 0;
  },
};
