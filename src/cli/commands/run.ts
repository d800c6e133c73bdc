import { loadConfig } from '../../config/load';
import { prepareConfig } from '../../plan/prepare';
import { progressPrinter } from '../../report/progress';
import { Redactor } from '../../secrets/redact';
import { precheck, precheckMessage } from '../checks';
import type { Command } from '../command';
import { confirmCheckpoint } from '../confirm';
import { EXIT_CODES } from '../help';
import { runInfo } from '../io';
import { finishReport } from '../outcome';
import { loadEngine } from '../lazy';
import { withSignals } from '../signals';

export const run: Command = {
  name: 'run',
  summary:
    'deploy: pre-flight, secrets, snapshot, each stage with health checks, verify; rolls back on failure',
  usage:
    '[--config FILE] [--phase all|p1,p2] [--ref REF] [--targets h1,h2] [--lock-wait DURATION]\n' +
    '                     [--force] [--json] [--report-file FILE] [--actor NAME]\n' +
    '                     [--yes] [--ignore-window|--wait-window] [--release-version V] [--skip-tests[=force]] [--no-rollback]',
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
    { name: 'yes' },
    { name: 'ignore-window' },
    { name: 'wait-window' },
    { name: 'release-version' },
    { name: 'skip-tests' },
    { name: 'no-rollback' },
  ],
  examples: [
    'homelab-deploy run --phase preflight,secrets,snapshot,staging --ref main',
    'homelab-deploy run --targets vps --lock-wait 5m --json --report-file report.json',
    "homelab-deploy run --config fleet.yml --targets 'region=eu' --yes --report-file report.json",
  ],
  notes: [
    'Signals: the first SIGINT/SIGTERM cancels the run (remote commands killed, locks released); a second one exits at once.',
    'Fleets: a run deploying to more than checkpoint.above targets (default 50) asks "deploy to N targets? [y/N]" on a terminal; without one it needs --yes.',
    EXIT_CODES,
  ],
  async run({ values, configPath, env }, io) {
    const loaded = loadConfig(configPath);
    const bad = precheck(loaded, values.phase, values.targets);
    if (bad) {
      io.err.write(precheckMessage(bad));
      return 2;
    }
    const { plan, config } = prepareConfig(loaded, values.phase ?? 'all', values.targets);
    // The deploying code (SSH, HTTP clients) is loaded only by the commands that deploy: `validate`, `plan` and
    // `--help` start without it.
    const { deploy } = await loadEngine();
    const n = plan.deploying.length;
    const confirmed = await confirmCheckpoint(
      {
        count: n,
        above: config.checkpointAbove,
        yes: values.yes,
        question: `deploy to ${n} targets?`,
        command: 'run',
      },
      io,
    );
    if (typeof confirmed === 'number') return confirmed;
    const progress = values.json ? io.err : io.out;
    const print = progressPrinter({ write: (t) => progress.write(t), tty: progress.isTTY === true });
    const report = await withSignals(io, (signal) =>
      deploy({
        configPath,
        phase: values.phase ?? 'all',
        ref: values.ref ?? 'HEAD',
        targets: values.targets,
        force: values.force,
        lockWaitMs: values.lockWaitMs,
        env,
        run: runInfo(env, values.actor),
        signal,
        redactor: new Redactor(),
        confirmed,
        ignoreWindow: values.ignoreWindow || undefined,
        waitForWindow: values.waitWindow || undefined,
        releaseVersion: values.releaseVersion,
        skipTests: values.skipTests || undefined,
        rollbackOnFailure: values.noRollback ? false : undefined,
        onEvent: print,
      }),
    );
    return finishReport(report, values, io);
  },
};
