import { loadConfig } from '../../config/load';
import { progressPrinter } from '../../report/progress';
import { Redactor } from '../../secrets/redact';
import { checkTargets, selectedNames } from '../checks';
import type { Command } from '../command';
import { confirmCheckpoint } from '../confirm';
import { EXIT_CODES } from '../help';
import { runInfo } from '../io';
import { finishReport } from '../outcome';
import { loadEngine } from '../lazy';
import { withSignals } from '../signals';

/** Every target a stage deploys to: what `rollback` touches without --targets. */
function stageTargets(config: ReturnType<typeof loadConfig>): string[] {
  return [...new Set(config.stages.flatMap((s) => s.targets))];
}

export const rollback: Command = {
  name: 'rollback',
  summary:
    'switch targets back to a recorded release, no rebuild: locked, audited, health-checked, with a report',
  usage:
    '--to previous|VERSION [--config FILE] [--targets h1,h2] [--yes] [--json] [--report-file FILE] [--actor NAME]',
  options: [
    { name: 'to' },
    { name: 'config' },
    {
      name: 'targets',
      help: 'only these targets (names, globs, label selectors); default: every stage target',
    },
    { name: 'yes', help: 'confirm a rollback of more than checkpoint.above targets' },
    { name: 'json', help: 'print the report as JSON on stdout; progress goes to stderr' },
    { name: 'report-file' },
    { name: 'actor' },
  ],
  examples: [
    'homelab-deploy rollback --to previous --targets rtx1080',
    "homelab-deploy rollback --to 1a2b3c4d5e6f --targets 'site-*' --yes --report-file rollback.json",
  ],
  notes: [
    '`homelab-deploy releases` lists, per target, what --to previous returns to and the releases on record.',
    'Signals: the first SIGINT/SIGTERM stops starting new targets; a second one exits at once.',
    EXIT_CODES,
  ],
  async run({ values, configPath, env }, io) {
    if (!values.to) {
      io.err.write(
        'rollback needs --to previous (each target back to its rollback point) or --to VERSION (homelab-deploy releases lists them)\n',
      );
      return 2;
    }
    const config = loadConfig(configPath);
    const bad = checkTargets(config, values.targets);
    if (bad) {
      io.err.write(bad + '\n');
      return 2;
    }
    const names = values.targets ? selectedNames(config, values.targets) : stageTargets(config);
    const confirmed = await confirmCheckpoint(
      {
        count: names.length,
        above: config.checkpointAbove,
        yes: values.yes,
        question: `roll back ${names.length} targets to ${values.to}?`,
        command: 'rollback',
      },
      io,
    );
    if (typeof confirmed === 'number') return confirmed;
    const to = values.to;
    const progress = values.json ? io.err : io.out;
    const print = progressPrinter({ write: (t) => progress.write(t), tty: progress.isTTY === true });
    const { rollback: rollbackTargets } = await loadEngine();
    const report = await withSignals(io, (signal) =>
      rollbackTargets({
        configPath,
        to,
        targets: values.targets,
        env,
        run: runInfo(env, values.actor),
        signal,
        redactor: new Redactor(),
        confirmed,
        onEvent: print,
      }),
    );
    return finishReport(report, values, io);
  },
};
