import { issueWhere } from '../../config/errors';
import { prepare } from '../../engine';
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
      `${configPath}: valid (${Object.keys(config.hosts).length} hosts, stages ${config.stages.map((s) => s.name).join(' → ')}, ${plan.phases.length} phases)\n`,
    );
    // A note about a target from an inventory names that file and line, not the config's.
    for (const n of config.notes ?? [])
      io.out.write(`  note: ${issueWhere(n, configPath)}: ${n.path}: ${n.message}\n`);
    return 0;
  },
};
