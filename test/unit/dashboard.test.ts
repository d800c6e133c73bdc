import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');

describe('Grafana dashboard', () => {
  it('queries only metrics the code emits, and every emitted metric is on the dashboard', () => {
    const dash = fs.readFileSync(path.join(root, 'dashboards/grafana-homelab-deploy.json'), 'utf8');
    const used = new Set(dash.match(/homelab_deploy_\w+/g));
    const src = ['from-report.ts']
      .map((f) => fs.readFileSync(path.join(root, 'src/metrics', f), 'utf8'))
      .join('\n');
    const emitted = new Set([...src.matchAll(/'(homelab_deploy_\w+)'/g)].map((m) => m[1]));
    expect([...used].filter((m) => !emitted.has(m))).toEqual([]);
    expect([...emitted].filter((m) => !used.has(m))).toEqual([]);
    const parsed = JSON.parse(dash) as { panels: { targets: unknown[] }[]; schemaVersion: number };
    expect(parsed.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(parsed.panels.every((p) => p.targets.length > 0)).toBe(true);
  });
});
