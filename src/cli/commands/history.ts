import * as fs from 'node:fs';
import { prepare } from '../../plan/prepare';
import { computeKpis, type DeployRecord } from '../../history/kpi';
import {
  parseReleaseLog,
  recordsFromReleaseLogs,
  recordsFromReports,
  type LogLine,
} from '../../history/records';
import { renderHistory } from '../../history/render';
import { render } from '../../metrics/exposition';
import { kpiFamilies } from '../../metrics/from-report';
import { metricsEnvironment } from '../../observe';
import type { Report } from '../../report/types';
import { Redactor } from '../../secrets/redact';
import { renderHistoryHtml } from '../../history/html';
import { checkTargets, selectedNames } from '../checks';
import { writeHtml } from './report';
import type { Command } from '../command';
import { loadInspect } from '../lazy';

export const history: Command = {
  name: 'history',
  summary:
    "past deploys and their KPIs (success rate, deploy time, MTTR), from the hosts' release logs or reports",
  usage: '[--config FILE] [--targets h1,h2] [REPORT.json...] [--json] [--metrics] [--html FILE]',
  operands: {
    name: 'REPORT.json...',
    help: "read these reports instead of the hosts' release logs (then nothing connects)",
    min: 0,
    max: Infinity,
    complete: 'file',
  },
  options: [
    { name: 'config' },
    { name: 'targets', help: 'read the release logs of these hosts only' },
    { name: 'json', help: 'print the KPIs and records as JSON' },
    { name: 'metrics' },
    {
      name: 'html',
      help: 'write the trends (success rate, deploy time, MTTR per environment) as an HTML page to FILE',
    },
  ],
  examples: [
    'homelab-deploy history',
    'homelab-deploy history reports/*.json --metrics',
    'homelab-deploy history --html history.html',
  ],
  async run({ values, operands, configPath, env }, io) {
    let records: DeployRecord[];
    let corrupt = 0;
    // The same labels as the run metrics, so history gauges join them on the dashboard.
    let labels: Record<string, string> = {};
    if (operands.length) {
      const reports = operands.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Report);
      records = recordsFromReports(reports);
      if (reports[0]) labels = { project: reports[0].project };
    } else {
      const { config } = prepare(configPath, 'all');
      const bad = checkTargets(config, values.targets);
      if (bad) {
        io.err.write(bad + '\n');
        return 2;
      }
      labels = { project: config.project, environment: metricsEnvironment(config) };
      const { readReleaseLogs } = await loadInspect();
      const logs = await readReleaseLogs(config, selectedNames(config, values.targets), {
        env,
        redactor: new Redactor(),
      });
      const lines: LogLine[] = [];
      for (const l of logs) {
        if (l.error) io.err.write(`${l.host}: ${l.error}\n`);
        const parsed = parseReleaseLog(l.text ?? '', l.host);
        lines.push(...parsed.lines);
        corrupt += parsed.corrupt;
      }
      records = recordsFromReleaseLogs(lines);
    }
    const kpis = computeKpis(records);
    if (corrupt) io.err.write(`${corrupt} unreadable release-log line(s) skipped\n`);
    if (values.html)
      writeHtml(
        values.html,
        renderHistoryHtml(records, kpis, { project: labels.project, generatedAt: new Date().toISOString() }),
        io,
        'the history page',
      );
    else if (values.metrics) io.out.write(render(kpiFamilies(kpis, labels)));
    else if (values.json) io.out.write(JSON.stringify({ kpis, records }, null, 2) + '\n');
    else io.out.write(renderHistory(records, kpis) + '\n');
    return 0;
  },
};
