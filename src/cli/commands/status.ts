import { prepare } from '../../plan/prepare';
import { Redactor } from '../../secrets/redact';
import { checkTargets, selectedNames } from '../checks';
import { EXIT_NEEDS_ATTENTION } from '../outcome';
import type { Command, CommandArgs } from '../command';
import type { CliIo } from '../io';
import { operatorName } from '../io';
import { loadInspect } from '../lazy';
import { renderLockStatus, renderRelease, renderStatus } from '../operator';

/** The config's hosts, or the --targets among them; a typo is reported and nothing connects. */
function hostsOf(args: CommandArgs, io: CliIo) {
  const { config } = prepare(args.configPath, 'all');
  const bad = checkTargets(config, args.values.targets);
  if (bad) {
    io.err.write(bad + '\n');
    return undefined;
  }
  return { config, hosts: selectedNames(config, args.values.targets) };
}

export const status: Command = {
  name: 'status',
  summary:
    'per target: current and previous release, lock, last results, rollback points, and what needs a human',
  usage: '[--config FILE] [--targets h1,h2] [--json]',
  options: [
    { name: 'config' },
    { name: 'targets' },
    { name: 'json', help: 'print the target states as JSON' },
  ],
  examples: ['homelab-deploy status --targets rtx1080'],
  notes: [
    'Exit codes: 0, 1 when a target could not be read (unreachable), 2 bad usage or config, 3 when a target needs a human (a failed rollback left a needs-attention record).',
  ],
  async run(args, io) {
    const scope = hostsOf(args, io);
    if (!scope) return 2;
    const { hostStatuses } = await loadInspect();
    const statuses = await hostStatuses(scope.config, scope.hosts, {
      env: args.env,
      redactor: new Redactor(),
    });
    if (args.values.json) io.out.write(JSON.stringify(statuses, null, 2) + '\n');
    else io.out.write(renderStatus(statuses) + '\n');
    const attention = statuses.filter((s) => s.needsAttention);
    if (attention.length) {
      // Also on stderr: with --json stdout goes to a machine, and the person must still see it.
      io.err.write(
        `⚠ NEEDS A HUMAN: ${attention.map((s) => s.host).join(', ')} (a rollback failed or was left unfinished); look at each, then redeploy or \`homelab-deploy rollback --to <release> --targets ...\`\n`,
      );
      return EXIT_NEEDS_ATTENTION;
    }
    return statuses.some((s) => !s.reachable) ? 1 : 0;
  },
};

export const lockStatus: Command = {
  name: 'lock status',
  summary: "each host's deploy lock: free, or held by whom, with its heartbeat: stale or live",
  usage: '[--config FILE] [--targets h1,h2] [--json]',
  options: [{ name: 'config' }, { name: 'targets' }, { name: 'json', help: 'print the locks as JSON' }],
  examples: ['homelab-deploy lock status', 'homelab-deploy lock   # the same'],
  async run(args, io) {
    const scope = hostsOf(args, io);
    if (!scope) return 2;
    const { hostStatuses } = await loadInspect();
    const statuses = await hostStatuses(scope.config, scope.hosts, {
      env: args.env,
      redactor: new Redactor(),
    });
    if (args.values.json)
      io.out.write(
        JSON.stringify(
          statuses.map(({ host, reachable, error, lock }) => ({ host, reachable, error, lock })),
          null,
          2,
        ) + '\n',
      );
    else io.out.write(renderLockStatus(statuses) + '\n');
    return statuses.some((s) => !s.reachable) ? 1 : 0;
  },
};

export const lockRelease: Command = {
  name: 'lock release',
  summary: 'remove stale deploy locks (audited on the host); a live one only with --force',
  usage: '--targets h1,h2 | --all [--force] [--actor NAME] [--config FILE] [--json]',
  options: [
    { name: 'targets', help: 'the hosts whose locks to remove' },
    { name: 'all' },
    {
      name: 'force',
      help: "also remove a lock whose holder's heartbeat is fresh (a deploy may still be running)",
    },
    { name: 'actor' },
    { name: 'config' },
    { name: 'json', help: 'print the outcome per host as JSON' },
  ],
  examples: [
    'homelab-deploy lock release --targets rtx1080',
    'homelab-deploy lock release --all --force --actor alice',
  ],
  async run(args, io) {
    const { values } = args;
    if (!values.targets && !values.all) {
      // Releasing every lock by default would break deploys in progress; the operator names what to free.
      io.err.write(
        'lock release needs --targets h1,h2 or --all: it removes deploy locks, and a live one protects a deploy in progress\n',
      );
      return 2;
    }
    if (values.targets && values.all) {
      io.err.write('give --targets or --all, not both\n');
      return 2;
    }
    const scope = hostsOf(args, io);
    if (!scope) return 2;
    const { releaseLocks } = await loadInspect();
    const res = await releaseLocks(scope.config, scope.hosts, {
      env: args.env,
      redactor: new Redactor(),
      operator: values.actor ?? operatorName(args.env),
      force: values.force,
    });
    if (values.json) io.out.write(JSON.stringify(res, null, 2) + '\n');
    else for (const r of res) io.out.write(renderRelease(r) + '\n');
    return res.every((r) => r.outcome === 'released' || r.outcome === 'free') ? 0 : 1;
  },
};
