import * as fs from 'node:fs';
import { loadConfig } from '../../config/load';
import { deploy, isFailure } from '../../engine';
import type { Report } from '../../report/types';
import { renderEvent, renderReportText } from '../../report/text';
import { Redactor } from '../../secrets/redact';
import { checkPhases, checkTargets } from '../checks';
import type { Command } from '../command';
import { EXIT_CODES } from '../help';
import { runInfo } from '../io';

/** Phase and host names are checked against the config before anything connects, with a suggestion for typos. */
export function precheck(
  configPath: string,
  phase: string | undefined,
  targets: string[] | undefined,
): string | undefined {
  if (phase === undefined && targets === undefined) return undefined;
  const config = loadConfig(configPath);
  return checkPhases(config, phase) ?? checkTargets(config, targets);
}

export const run: Command = {
  name: 'run',
  summary:
    'deploy: pre-flight, secrets, snapshot, each stage with health checks, verify; rolls back on failure',
  usage:
    '[--config FILE] [--phase all|p1,p2] [--ref REF] [--targets h1,h2] [--lock-wait DURATION]\n' +
    '                     [--force] [--json] [--report-file FILE] [--actor NAME]',
  options: [
    { name: 'config' },
    { name: 'phase' },
    { name: 'ref' },
    { name: 'targets' },
    { name: 'lock-wait' },
    {
      name: 'force',
      help: 'redeploy hosts where the release is already current (otherwise they are only health-checked)',
    },
    { name: 'json', help: 'print the report as JSON on stdout; progress goes to stderr' },
    { name: 'report-file' },
    { name: 'actor' },
  ],
  examples: [
    'homelab-deploy run --phase preflight,secrets,snapshot,staging --ref main',
    'homelab-deploy run --targets vps --lock-wait 5m --json --report-file report.json',
  ],
  notes: [
    'Signals: the first SIGINT/SIGTERM cancels the run (remote commands killed, locks released); a second one exits at once.',
    EXIT_CODES,
  ],
  async run({ values, configPath, env }, io) {
    const bad = precheck(configPath, values.phase, values.targets);
    if (bad) {
      io.err.write(bad.startsWith('--targets') ? `${bad}\n` : `error [config]: ${bad}\n`);
      return 2;
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
        phase: values.phase ?? 'all',
        ref: values.ref ?? 'HEAD',
        targets: values.targets,
        force: values.force,
        lockWaitMs: values.lockWaitMs,
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
    if (values.reportFile) fs.writeFileSync(values.reportFile, json + '\n');
    if (values.json) io.out.write(json + '\n');
    else io.out.write(renderReportText(report) + '\n');
    return isFailure(report.status) ? 1 : 0;
  },
};
