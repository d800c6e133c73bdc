import * as fs from 'node:fs';
import { isFailure } from '../../engine';
import { mergeReports, type ExpectedShard } from '../../report/merge';
import { renderSummary } from '../../report/summary';
import { renderReportText } from '../../report/text';
import type { Report } from '../../report/types';
import type { Command } from '../command';

export const mergeReportsCommand: Command = {
  name: 'merge-reports',
  summary: "combine the reports of a pipeline's jobs or a bulk deploy's shards into one",
  usage: 'FILE... [--matrix FILE] [--report-file FILE] [--summary] [--json]',
  operands: {
    name: 'FILE...',
    help: 'JSON reports (the report-file of each job or shard)',
    min: 0,
    max: Infinity,
    complete: 'file',
  },
  options: [
    { name: 'matrix' },
    { name: 'report-file', help: 'also write the merged JSON report to FILE' },
    { name: 'summary' },
    { name: 'json', help: 'print the merged report as JSON' },
  ],
  examples: ['homelab-deploy merge-reports reports/*.json --matrix plan/matrix.json --summary'],
  async run({ values, operands }, io) {
    if (operands.length === 0 && !values.matrix) {
      io.err.write('merge-reports needs at least one report file (or --matrix)\n');
      return 2;
    }
    const expected = values.matrix
      ? (JSON.parse(fs.readFileSync(values.matrix, 'utf8')) as { include: ExpectedShard[] }).include
      : undefined;
    const merged = mergeReports(
      operands.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Report),
      { expected },
    );
    if (values.reportFile) fs.writeFileSync(values.reportFile, JSON.stringify(merged, null, 2) + '\n');
    if (values.summary) io.out.write(renderSummary(merged));
    else if (values.json) io.out.write(JSON.stringify(merged, null, 2) + '\n');
    else io.out.write(renderReportText(merged) + '\n');
    return isFailure(merged.status) ? 1 : 0;
  },
};
