import { loadConfig } from '../../config/load';
import { renderPlan } from '../../plan/plan';
import { prepareConfig } from '../../plan/prepare';
import type { Command } from '../command';
import { planNotes, vercelCosts } from '../plan-notes';
import { shardMatrix } from '../shard-matrix';
import { precheck, precheckMessage } from '../checks';

export const plan: Command = {
  name: 'plan',
  summary: 'show what a run would do, phase by phase and host by host; connects nowhere',
  usage: '[--config FILE] [--phase all|p1,p2] [--targets h1,h2] [--json] [--shards N]',
  options: [
    { name: 'config' },
    { name: 'phase' },
    { name: 'targets' },
    { name: 'json', help: 'print the plan as JSON' },
    {
      name: 'shards',
      help: "print a GitHub Actions matrix splitting the targets into N shards (1-256, GitHub's matrix limit); a fleet stage's canary wave is an entry of its own (shard 0)",
    },
  ],
  examples: [
    'homelab-deploy plan --phase production',
    'homelab-deploy plan --config .github/homelab/fleet.yml --shards 20 --json   # a matrix for bulk-deploy.yml',
  ],
  notes: [
    'For fleets the plan shows the waves of each stage, the checkpoint (how many targets the run deploys against checkpoint.above), the deploy window and whether it is open now, and for Vercel projects the deployments the run creates, their share of the daily quota and the expected wall time.',
  ],
  async run({ values, configPath }, io) {
    const loaded = loadConfig(configPath);
    const bad = precheck(loaded, values.phase, values.targets);
    if (bad) {
      io.err.write(precheckMessage(bad));
      return 2;
    }
    const { plan: p, config } = prepareConfig(loaded, values.phase ?? 'all', values.targets);
    if (values.shards !== undefined) {
      io.out.write(JSON.stringify(shardMatrix(config, p, values.shards, values.targets)) + '\n');
      return 0;
    }
    if (values.json) {
      const costs = vercelCosts(config, p);
      const phases = p.phases.map(({ stage: _s, ...ph }) => {
        const cost = costs.filter((c) => c.stage === ph.name);
        return cost.length ? { ...ph, vercelCost: cost } : ph;
      });
      io.out.write(JSON.stringify(phases, null, 2) + '\n');
      return 0;
    }
    const notes = planNotes(config, p);
    io.out.write([renderPlan(p), ...(notes.length ? ['', ...notes] : [])].join('\n') + '\n');
    return 0;
  },
};
