import * as fs from 'node:fs';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/errors';
import { deploy, isFailure, prepare } from '../engine';
import { DeployError } from '../errors';
import { renderPlan } from '../plan/plan';
import { shardTargets } from '../plan/shards';
import { mergeReports, type ExpectedShard } from '../report/merge';
import { renderSummary } from '../report/summary';
import type { Report } from '../report/types';
import { renderEvent, renderReportText } from '../report/text';
import { Redactor } from '../secrets/redact';
import { hostStatuses, readReleaseLogs, releaseLocks } from '../targets/inspect';
import { nearest } from '../config/suggest';
import type { Config } from '../config/types';
import type { RunInfo } from '../run/context';
import { parseDuration } from '../util/duration';
import { renderLockStatus, renderRelease, renderStatus } from './operator';
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
import { metricsEnvironment } from '../observe';

const USAGE = `homelab-deploy: phased, rollback-safe deploys over SSH

Usage:
  homelab-deploy run      [--config FILE] [--phase all|p1,p2] [--ref REF] [--targets h1,h2] [--lock-wait DURATION]
                          [--json] [--report-file FILE]
  homelab-deploy plan     [--config FILE] [--phase ...] [--targets ...] [--json] [--shards N]
  homelab-deploy merge-reports FILE... [--matrix FILE] [--report-file FILE] [--summary] [--json]
  homelab-deploy history  [--config FILE] [REPORT.json...] [--json] [--metrics]  deploys and KPIs (success rate, MTTR...)
  homelab-deploy validate [--config FILE]
  homelab-deploy status   [--config FILE] [--targets ...] [--json]   per host: current/previous release, lock,
                          last results, rollback points
  homelab-deploy lock status [--config FILE] [--targets ...] [--json]   free / held by whom, heartbeat, stale or live
  homelab-deploy lock release --targets h1,h2 | --all [--force] [--actor NAME]
                          removes stale locks (audited on the host); a live one only with --force

Options:
  -c, --config FILE      config file (default: homelab-deploy.yml, else .github/homelab/deploy.yml)
  -p, --phase SPEC       "all" (default) or a comma-separated list: preflight, secrets, snapshot, <stage>, verify
  -r, --ref REF          git ref or commit to deploy (default: HEAD); resolved to a full SHA first
  -t, --targets LIST     only these hosts
      --json             print the report (or plan) as JSON on stdout; progress goes to stderr
      --report-file FILE also write the JSON report to FILE
      --lock-wait DUR    with run: wait up to DUR (e.g. 5m) for another deploy's lock (overrides lock.wait)
      --force            with run: redeploy hosts where the release is already current;
                         with lock release: remove a lock whose holder's heartbeat is fresh
      --all              with lock release: every host in the config
      --actor NAME       who you are, for lock owner records and the audit log (default: $USER)
      --shards N         with plan --json: a GitHub Actions matrix splitting the hosts into N shards
      --summary          with merge-reports: print the Markdown job summary
      --matrix FILE      with merge-reports: the plan's shard matrix; shards without a report count as failed
      --metrics          with history: print the KPIs in Prometheus text format
  -h, --help             this text

Signals: the first SIGINT/SIGTERM cancels the run (remote commands killed, locks released); a second one exits at once.

Exit codes: 0 success or partial_success, 1 failed / rolled_back / aborted (or a host unreachable, a lock
refused), 2 bad usage or config, 130/143 when a second signal ended the process.`;

function defaultConfig(): string {
  return fs.existsSync('homelab-deploy.yml') ? 'homelab-deploy.yml' : '.github/homelab/deploy.yml';
}

/** Where the CLI talks to; tests pass their own to run it in-process. */
export interface CliIo {
  out: { write(text: string): unknown };
  err: { write(text: string): unknown };
  env?: NodeJS.ProcessEnv;
  /** Source of SIGINT/SIGTERM (default: the process). */
  signals?: {
    on(signal: 'SIGINT' | 'SIGTERM', fn: (signal: NodeJS.Signals) => void): unknown;
    removeListener(signal: 'SIGINT' | 'SIGTERM', fn: (signal: NodeJS.Signals) => void): unknown;
  };
  /** How a second signal ends the process (default: process.exit). */
  exit?: (code: number) => void;
}

/** The run's identity for lock owner records and logs: the GitHub run when inside one, else the operator. */
function runInfo(env: NodeJS.ProcessEnv, actor: string | undefined): RunInfo {
  const inActions = env.GITHUB_ACTIONS === 'true';
  const repo = inActions ? env.GITHUB_REPOSITORY : undefined;
  const id = inActions ? env.GITHUB_RUN_ID : undefined;
  return {
    id: id ? `${id}-${env.GITHUB_RUN_ATTEMPT ?? '1'}` : undefined,
    url:
      repo && id ? `${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${repo}/actions/runs/${id}` : undefined,
    actor: actor ?? operatorName(env),
    repository: repo,
  };
}

function operatorName(env: NodeJS.ProcessEnv): string {
  if (env.GITHUB_ACTIONS === 'true' && env.GITHUB_ACTOR) return env.GITHUB_ACTOR;
  if (env.USER) return env.USER;
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** Hosts named by --targets, checked against the config so a typo fails before any host is contacted. */
function checkTargets(config: Config, targets: string[]): string | undefined {
  const known = Object.keys(config.hosts);
  const bad = targets.filter((t) => !config.hosts[t]);
  if (!bad.length) return undefined;
  return `--targets: ${bad
    .map((b) => {
      const near = nearest(b, known);
      return `unknown host "${b}"${near ? ` (did you mean "${near}"?)` : ''}`;
    })
    .join(', ')}; ${config.file} has ${known.join(', ')}`;
}

export async function main(
  argv: string[],
  io: CliIo = { out: process.stdout, err: process.stderr },
): Promise<number> {
  const env = io.env ?? process.env;
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
        'lock-wait': { type: 'string' },
        all: { type: 'boolean', default: false },
        actor: { type: 'string' },
        shards: { type: 'string' },
        matrix: { type: 'string' },
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
        for (const n of config.notes ?? []) {
          const where =
            n.line === undefined
              ? configPath
              : `${configPath}:${n.line}${n.column === undefined ? '' : `:${n.column}`}`;
          io.out.write(`  note: ${where}: ${n.path}: ${n.message}\n`);
        }
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
        let lockWaitMs: number | undefined;
        if (values['lock-wait'] !== undefined) {
          lockWaitMs = parseDuration(values['lock-wait']);
          if (lockWaitMs === undefined) {
            io.err.write(
              `--lock-wait must be a duration such as 0, 30s or 5m, got ${JSON.stringify(values['lock-wait'])}\n`,
            );
            return 2;
          }
        }
        const controller = new AbortController();
        const signals = io.signals ?? process;
        const exit = io.exit ?? ((code: number) => process.exit(code));
        let received = 0;
        // The runner gives ~7.5 s between SIGINT and SIGTERM, a person presses Ctrl-C twice: the first signal
        // cancels cleanly, the second means "now", even if cleanup (lock release, kills) is still going.
        const onSignal = (sig: NodeJS.Signals) => {
          received++;
          if (received === 1) {
            io.err.write(`\n${sig}: stopping: no new steps, remote commands killed, locks released\n`);
            controller.abort();
            return;
          }
          io.err.write(
            `\n${sig} again: exiting now; locks this run still holds go stale after lock.stale_after (or: homelab-deploy lock release)\n`,
          );
          exit(sig === 'SIGINT' ? 130 : 143);
        };
        signals.on('SIGINT', onSignal);
        signals.on('SIGTERM', onSignal);
        const progress = values.json ? io.err : io.out;
        let report: Report;
        try {
          report = await deploy({
            configPath,
            phase: values.phase,
            ref: values.ref,
            targets,
            force: values.force,
            lockWaitMs,
            env,
            run: runInfo(env, values.actor),
            signal: controller.signal,
            redactor: new Redactor(),
            onEvent: (e) => {
              const line = renderEvent(e);
              if (line) progress.write(line + '\n');
            },
          });
        } finally {
          signals.removeListener('SIGINT', onSignal);
          signals.removeListener('SIGTERM', onSignal);
        }
        const json = JSON.stringify(report, null, 2);
        if (values['report-file']) fs.writeFileSync(values['report-file'], json + '\n');
        if (values.json) io.out.write(json + '\n');
        else io.out.write(renderReportText(report) + '\n');
        return isFailure(report.status) ? 1 : 0;
      }
      case 'merge-reports': {
        const files = positionals.slice(1);
        if (files.length === 0 && !values.matrix) {
          io.err.write('merge-reports needs at least one report file (or --matrix)\n');
          return 2;
        }
        const expected = values.matrix
          ? (JSON.parse(fs.readFileSync(values.matrix, 'utf8')) as { include: ExpectedShard[] }).include
          : undefined;
        const merged = mergeReports(
          files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Report),
          { expected },
        );
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
        // The same labels as the run metrics, so history gauges join them on the dashboard.
        let labels: Record<string, string> = {};
        if (files.length) {
          const reports = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Report);
          records = recordsFromReports(reports);
          if (reports[0]) labels = { project: reports[0].project };
        } else {
          const { config } = prepare(configPath, 'all');
          labels = { project: config.project, environment: metricsEnvironment(config) };
          const logs = await readReleaseLogs(config, targets ?? Object.keys(config.hosts), {
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
        if (values.metrics) io.out.write(render(kpiFamilies(kpis, labels)));
        else if (values.json) io.out.write(JSON.stringify({ kpis, records }, null, 2) + '\n');
        else io.out.write(renderHistory(records, kpis) + '\n');
        return 0;
      }
      case 'status':
      case 'lock': {
        const sub = command === 'lock' ? (positionals[1] ?? 'status') : 'status';
        if (sub !== 'status' && sub !== 'release') {
          io.err.write(`unknown lock command "${sub}": expected "lock status" or "lock release"\n`);
          return 2;
        }
        if (sub === 'release' && !targets && !values.all) {
          // Releasing every lock by default would break deploys in progress; the operator names what to free.
          io.err.write(
            'lock release needs --targets h1,h2 or --all: it removes deploy locks, and a live one protects a deploy in progress\n',
          );
          return 2;
        }
        if (targets && values.all) {
          io.err.write('give --targets or --all, not both\n');
          return 2;
        }
        const { config } = prepare(configPath, 'all');
        const bad = targets && checkTargets(config, targets);
        if (bad) {
          io.err.write(bad + '\n');
          return 2;
        }
        const hosts = targets ?? Object.keys(config.hosts);
        const redactor = new Redactor();
        if (sub === 'release') {
          const res = await releaseLocks(config, hosts, {
            env,
            redactor,
            operator: values.actor ?? operatorName(env),
            force: values.force,
          });
          if (values.json) io.out.write(JSON.stringify(res, null, 2) + '\n');
          else for (const r of res) io.out.write(renderRelease(r) + '\n');
          return res.every((r) => r.outcome === 'released' || r.outcome === 'free') ? 0 : 1;
        }
        const statuses = await hostStatuses(config, hosts, { env, redactor });
        if (values.json) {
          const list =
            command === 'lock'
              ? statuses.map(({ host, reachable, error, lock }) => ({ host, reachable, error, lock }))
              : statuses;
          io.out.write(JSON.stringify(list, null, 2) + '\n');
        } else
          io.out.write((command === 'lock' ? renderLockStatus(statuses) : renderStatus(statuses)) + '\n');
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
