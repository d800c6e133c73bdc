import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CommandArgs } from '../../src/cli/command';
import { validate } from '../../src/cli/commands/validate';
import { loadConfig } from '../../src/config/load';
import { buildPlan, phaseNames } from '../../src/plan/plan';

const root = path.join(__dirname, '..', '..', 'examples');
const configs = fs
  .readdirSync(root)
  .map((d) => path.join(root, d, 'homelab-deploy.yml'))
  .filter((f) => fs.existsSync(f));

describe('the example configs', () => {
  it('there is one per kind of system: an ECS service from the runner and a Vercel fleet', () => {
    expect(configs.map((c) => path.basename(path.dirname(c))).sort()).toEqual(
      expect.arrayContaining(['ecs-service', 'vercel-fleet']),
    );
  });

  it.each(configs.map((c) => [path.relative(root, c), c]))('%s loads and plans', (_name, file) => {
    const config = loadConfig(file);
    const plan = buildPlan(config, phaseNames(config));
    expect(plan.deploying.length).toBeGreaterThan(0);
    // Documentation addresses only: no real domains or hosts in examples.
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\b([a-z0-9-]+\.)+(com|de|net|io|org)\b/g))
      expect(m[0]).toMatch(/(^|\.)example\.com$/);
  });

  it('the Vercel fleet rolls out its sites stage in waves, the ECS service takes a backup before production', () => {
    const fleet = loadConfig(path.join(root, 'vercel-fleet', 'homelab-deploy.yml'));
    const sites = fleet.stages.find((s) => s.name === 'sites');
    expect(sites?.rollout?.waves).toEqual([{ count: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }]);
    expect(Object.values(fleet.targets).every((t) => t.kind === 'vercel')).toBe(true);
    const ecs = loadConfig(path.join(root, 'ecs-service', 'homelab-deploy.yml'));
    const prod = ecs.targets['ecs-production'];
    expect(prod.kind === 'runner' && prod.snapshot).toBe('./scripts/backup-rds.sh production');
    expect(ecs.release?.sync?.branch).toBe('main');
  });

  it('validate counts the targets of each kind, not only SSH hosts', async () => {
    const said = async (dir: string) => {
      let out = '';
      const io = { out: { write: (t: string) => (out += t) }, err: { write: () => true } };
      const configPath = path.join(root, dir, 'homelab-deploy.yml');
      expect(
        await validate.run({ values: {} as CommandArgs['values'], operands: [], configPath, env: {} }, io),
      ).toBe(0);
      return out;
    };
    expect(await said('ecs-service')).toMatch(/: valid \(2 targets: 2 runner, stages /);
    expect(await said('vercel-fleet')).toMatch(/: valid \(\d+ targets: \d+ vercel, stages /);
  });
});
