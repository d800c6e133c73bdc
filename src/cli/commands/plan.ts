import { prepare } from '../../engine';
import { renderPlan } from '../../plan/plan';
import { shardTargets } from '../../plan/shards';
import type { Command } from '../command';
import { precheck } from './run';

export const plan: Command = {
  name: 'plan',
  summary: 'show what a run would do, phase by phase and host by host; connects nowhere',
  usage: '[--config FILE] [--phase all|p1,p2] [--targets h1,h2] [--json] [--shards N]',
  options: [
    { name: 'config' },
    { name: 'phase' },
    { name: 'targets' },
    { name: 'json', help: 'print the plan as JSON' },
    { name: 'shards' },
  ],
  examples: [
    'homelab-deploy plan --phase production',
    'homelab-deploy plan --config .github/homelab/fleet.yml --shards 20 --json   # a matrix for bulk-deploy.yml',
  ],
  async run({ values, configPath }, io) {
    const bad = precheck(configPath, values.phase, values.targets);
    if (bad) {
      io.err.write(bad.startsWith('--targets') ? `${bad}\n` : `error [config]: ${bad}\n`);
      return 2;
    }
    const { plan: p, config } = prepare(configPath, values.phase ?? 'all', values.targets);
    if (values.shards !== undefined) {
      io.out.write(JSON.stringify(shardTargets(config, values.shards, values.targets)) + '\n');
      return 0;
    }
    io.out.write(
      (values.json
        ? JSON.stringify(
            p.phases.map(({ stage: _s, ...ph }) => ph),
            null,
            2,
          )
        : renderPlan(p)) + '\n',
    );
    return 0;
  },
};
