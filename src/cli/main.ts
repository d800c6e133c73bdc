import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/errors';
import { deploy, isFailure, prepare } from '../engine';
import { DeployError } from '../errors';
import { renderPlan } from '../pipeline/plan';
import { shardTargets } from '../pipeline/shards';
import { mergeReports } from '../report/merge';
import { renderSummary } from '../report/summary';
import type { Report } from '../report/types';
import { renderEvent, renderReportText } from '../report/text';
import { Redactor } from '../secrets/redact';
import { forceReleaseLocks, hostStatuses, readReleaseLogs, type HostStatus } from '../deploy/inspect';
import { computeKpis, type DeployRecord } from '../history/kpi';
import {
  parseReleaseLog,
  recordsFromReleaseLogs,
  recordsFromReports,
  type LogLine,
} from '../history/records';
import { renderHistory } from '../history/render';
import { render } from '../metrics/exposition';
import { kpiFamilies } from '../metrics/from-report';

function renderStatuses(list: HostStatus[], lockOnly: boolean): string {
  return list
    .map((s) => {
      if (!s.reachable) return `${s.host}: unreachable: ${s.error}`;
      const lock =
        s.lock === 'none' || s.lock === undefined
          ? 'unlocked'
          : s.lock === 'unknown-owner'
            ? 'LOCKED by an unknown owner'
            : `LOCKED by ${s.lock.actor ?? '?'} (run ${s.lock.runUrl ?? s.lock.runId ?? s.lock.token}, phase ${s.lock.phase}) since ${s.lock.startedAt}, heartbeat ${s.lock.ageSeconds}s ago`;
      if (lockOnly) return `${s.host}: ${lock}`;
      const last = (s.recent ?? []).slice(-3).map((l) => `${l.time} ${l.event} ${l.release} ${l.result}`);
      return [
        `${s.host}: current ${s.current ?? '(none)'}, previous ${s.previous ?? '(none)'}, ${lock}`,
        ...last.map((l) => `    ${l}`),
      ].join('\n');
    })
    .join('\n');
}

const USAGE = `homelab-deploy: phased, rollback-safe deploys over SSH

Usage:
  homelab-deploy run      [--config FILE] [--phase all|p1,p2] [--ref REF] [--targets h1,h2] [--json] [--report-file FILE]
  homelab-deploy plan     [--config FILE] [--phase ...] [--targets ...] [--json] [--shards N]
  homelab-deploy merge-reports FILE... [--report-file FILE] [--summary] [--json]
  homelab-deploy history  [--config FILE] [REPORT.json...] [--json] [--metrics]  deploys and KPIs (success rate, MTTR...)
  homelab-deploy validate [--config FILE]
  homelab-deploy status   [--config FILE] [--targets ...] [--json]      current/previous release, lock, last results
  homelab-deploy lock status|release [--config FILE] [--targets ...]  release removes a lock whoever holds it (audited)

Options:
  -c, --config FILE      config file (default: homelab-deploy.yml, else .github/homelab/deploy.yml)
  -p, --phase SPEC       "all" (default) or a comma-separated list: preflight, secrets, snapshot, <stage>, verify
  -r, --ref REF          git ref or commit to deploy (default: HEAD); resolved to a full SHA first
  -t, --targets LIST     only these hosts
      --json             print the report (or plan) as JSON on stdout; progress goes to stderr
      --report-file FILE also write the JSON report to FILE
      --force            redeploy hosts where the release is already current
      --shards N         with plan --json: a GitHub Actions matrix splitting the hosts into N shards
      --summary          with merge-reports: print the Markdown job summary
      --metrics          with history: print the KPIs in Prometheus text format
  -h, --help             this text

Exit codes: 0 success or partial_success, 1 failed / rolled_back / aborted, 2 bad usage or config.`;

function defaultConfig(): string {
  return fs.existsSync('homelab-deploy.yml') ? 'homelab-deploy.yml' : '.github/homelab/deploy.yml';
}

export async function main(
  argv: string[],
  io = { out: process.stdout, err: process.stderr },
): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        phase: { type: 'string', short: 'p', default: 'all' },
        ref: { type: 'string', short: 'r', default: 'HEAD' },
        targets: { type: 'string', short: 't' },
        json: { type: 'boolean', default: false },
        'report-file': { type: 'string' },
        force: { type: 'boolean', default: false },
        shards: { type: 'string' },
        summary: { type: 'boolean', default: false },
        metrics: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    io.err.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = args;
  const command = positionals[0];
  if (values.help || !command) {
    io.out.write(USAGE + '\n');
    return values.help ? 0 : 2;
  }
  const configPath = values.config ?? defaultConfig();
  const targets = values.targets
    ? values.targets
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean)
    : undefined;
  try {
    switch (command) {
      case 'validate': {
        const { config, plan } = prepare(configPath, 'all');
        io.out.write(
          `${configPath}: valid (${Object.keys(config.hosts).length} hosts, stages ${config.stages.map((s) => s.name).join(' → ')}, ${plan.phases.length} phases)\n`,
        );
        return 0;
      }
      case 'plan': {
        const { plan, config } = prepare(configPath, values.phase, targets);
        if (values.shards !== undefined) {
          io.out.write(JSON.stringify(shardTargets(config, Number(values.shards), targets)) + '\n');
          return 0;
        }
        io.out.write(
          (values.json
            ? JSON.stringify(
                plan.phases.map(({ stage: _s, ...p }) => p),
                null,
                2,
              )
            : renderPlan(plan)) + '\n',
        );
        return 0;
      }
      case 'run': {
        const controller = new AbortController();
        const onSignal = (sig: string) => {
          io.err.write(`\n${sig}: stopping: no new steps, remote commands killed, locks released\n`);
          controller.abort();
        };
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        const progress = values.json ? io.err : io.out;
        const report = await deploy({
          configPath,
          phase: values.phase,
          ref: values.ref,
          targets,
          force: values.force,
          signal: controller.signal,
          redactor: new Redactor(),
          onEvent: (e) => {
            const line = renderEvent(e);
            if (line) progress.write(line + '\n');
          },
        });
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
        const json = JSON.stringify(report, null, 2);
        if (values['report-file']) fs.writeFileSync(values['report-file'], json + '\n');
        if (values.json) io.out.write(json + '\n');
        else io.out.write(renderReportText(report) + '\n');
        return isFailure(report.status) ? 1 : 0;
      }
      case 'merge-reports': {
        const files = positionals.slice(1);
        if (files.length === 0) {
          io.err.write('merge-reports needs at least one report file\n');
          return 2;
        }
        const merged = mergeReports(files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Report));
        if (values['report-file'])
          fs.writeFileSync(values['report-file'], JSON.stringify(merged, null, 2) + '\n');
        if (values.summary) io.out.write(renderSummary(merged));
        else if (values.json) io.out.write(JSON.stringify(merged, null, 2) + '\n');
        else io.out.write(renderReportText(merged) + '\n');
        return isFailure(merged.status) ? 1 : 0;
      }
      case 'history': {
        const files = positionals.slice(1);
        let records: DeployRecord[] = [];
        let corrupt = 0;
        if (files.length) {
          records = recordsFromReports(files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Report));
        } else {
          const { config } = prepare(configPath, 'all');
          const logs = await readReleaseLogs(config, targets ?? Object.keys(config.hosts), {
            env: process.env,
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
        if (values.metrics) io.out.write(render(kpiFamilies(kpis, {})));
        else if (values.json) io.out.write(JSON.stringify({ kpis, records }, null, 2) + '\n');
        else io.out.write(renderHistory(records, kpis) + '\n');
        return 0;
      }
      case 'status':
      case 'lock': {
        const { config } = prepare(configPath, 'all');
        const hosts = targets ?? Object.keys(config.hosts);
        const redactor = new Redactor();
        const sub = command === 'lock' ? (positionals[1] ?? 'status') : 'status';
        if (sub === 'release') {
          const res = await forceReleaseLocks(config, hosts, {
            env: process.env,
            redactor,
            actor: process.env.GITHUB_ACTOR ?? process.env.USER ?? 'operator',
          });
          for (const r of res)
            io.out.write(
              `${r.host}: ${r.error ? `error: ${r.error}` : r.released ? 'lock released' : 'no lock'}\n`,
            );
          return res.some((r) => r.error) ? 1 : 0;
        }
        if (sub !== 'status') {
          io.err.write(`unknown lock command "${sub}": expected status or release\n`);
          return 2;
        }
        const statuses = await hostStatuses(config, hosts, { env: process.env, redactor });
        if (values.json) io.out.write(JSON.stringify(statuses, null, 2) + '\n');
        else io.out.write(renderStatuses(statuses, command === 'lock') + '\n');
        return statuses.some((s) => !s.reachable) ? 1 : 0;
      }
      default:
        io.err.write(`unknown command "${command}"\n\n${USAGE}\n`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err.write(err.message + '\n');
      return 2;
    }
    if (err instanceof DeployError) {
      io.err.write(`error [${err.errorClass}]: ${err.message}\n`);
      return err.errorClass === 'config' ? 2 : 1;
    }
    io.err.write(`internal error: ${(err as Error).stack ?? err}\n`);
    return 1;
  }
}
