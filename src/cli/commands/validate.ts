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
    for (const n of config.notes ?? []) {
      const where =
        n.line === undefined
          ? configPath
          : `${configPath}:${n.line}${n.column === undefined ? '' : `:${n.column}`}`;
      io.out.write(`  note: ${where}: ${n.path}: ${n.message}\n`);
    }
    return 0;
  },
};
