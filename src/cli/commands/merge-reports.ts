import * as fs from 'node:fs';
import { loadConfig } from '../../config/load';
import { mergeReports, type ExpectedShard } from '../../report/merge';
import { renderSummary } from '../../report/summary';
import { renderReportText } from '../../report/text';
import type { Report } from '../../report/types';
import type { Command } from '../command';
import { completeShardMerge } from '../merge-fleet';
import { attentionLines, exitCodeOf, writeFileAtomic } from '../outcome';

export const mergeReportsCommand: Command = {
  name: 'merge-reports',
  summary: "combine the reports of a pipeline's jobs or a bulk deploy's shards into one",
  usage: 'FILE... [--matrix FILE] [--config FILE] [--report-file FILE] [--summary] [--json]',
  operands: {
    name: 'FILE...',
    help: 'JSON reports (the report-file of each job or shard)',
    min: 0,
    max: Infinity,
    complete: 'file',
  },
  options: [
    { name: 'matrix' },
    {
      name: 'config',
      help: "the fleet's config: its failure budget is applied to all shards together (an escalation when passed)",
    },
    { name: 'report-file', help: 'also write the merged JSON report to FILE' },
    { name: 'summary' },
    { name: 'json', help: 'print the merged report as JSON' },
  ],
  examples: ['homelab-deploy merge-reports reports/*.json --matrix plan/matrix.json --summary'],
  notes: [
    'Exit codes: 0 success or partial_success, 1 failed / rolled_back / aborted, 2 bad usage, 3 when a target needs a human (a failed rollback, or a shard without a report: its targets are unknown).',
  ],
  async run({ values, operands }, io) {
    if (operands.length === 0 && !values.matrix) {
      io.err.write('merge-reports needs at least one report file (or --matrix)\n');
      return 2;
    }
    const expected = values.matrix
      ? (JSON.parse(fs.readFileSync(values.matrix, 'utf8')) as { include: ExpectedShard[] }).include
      : undefined;
    const reports = operands.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Report);
    const merged = completeShardMerge(
      mergeReports(reports, { expected }),
      reports,
      values.config ? loadConfig(values.config) : undefined,
    );
    if (values.reportFile) writeFileAtomic(values.reportFile, JSON.stringify(merged, null, 2) + '\n');
    if (values.summary) io.out.write(renderSummary(merged));
    else if (values.json) io.out.write(JSON.stringify(merged, null, 2) + '\n');
    else io.out.write([renderReportText(merged), ...attentionLines(merged)].join('\n') + '\n');
    return exitCodeOf(merged);
  },
};
