import { issueWhere } from '../../config/errors';
import { prepare } from '../../plan/prepare';
import type { Command } from '../command';

export const validate: Command = {
  name: 'validate',
  summary: 'check the config file: every problem with file, line and the key it is about',
  usage: '[--config FILE]',
  options: [{ name: 'config' }],
  examples: ['homelab-deploy validate --config .github/homelab/deploy.yml'],
  async run({ configPath }, io) {
    const { config, plan } = prepare(configPath, 'all');
    io.out.write(
      `${configPath}: valid (${describeTargets(Object.values(config.targets))}, stages ${config.stages.map((s) => s.name).join(' → ')}, ${plan.phases.length} phases)\n`,
    );
    // A note about a target from an inventory names that file and line, not the config's.
    for (const n of config.notes ?? [])
      io.out.write(`  note: ${issueWhere(n, configPath)}: ${n.path}: ${n.message}\n`);
    return 0;
  },
};

/** "3 targets: 2 ssh, 1 vercel", or "3 hosts" where every target is an SSH host. */
function describeTargets(targets: { kind?: string }[]): string {
  const byKind = new Map<string, number>();
  for (const t of targets) byKind.set(t.kind ?? 'ssh', (byKind.get(t.kind ?? 'ssh') ?? 0) + 1);
  const n = targets.length;
  if ([...byKind.keys()].every((k) => k === 'ssh')) return `${n} host${n === 1 ? '' : 's'}`;
  const kinds = [...byKind].map(([k, c]) => `${c} ${k}`).join(', ');
  return `${n} target${n === 1 ? '' : 's'}: ${kinds}`;
}
