/**
 * The Vercel fleet as a user would write it: one inventory CSV row per site, a config that turns every row
 * into a Vercel target of one team, one stage holding them all (over 50 targets it rolls out as a fleet:
 * a canary, then the rest, with a 5 % budget) and a health check of each deployment's own URL that also wants
 * the run's release in the answer. The API and the edge are the stand-in's, on loopback.
 */
export interface VercelFleetOptions {
  names: string[];
  apiUrl: string;
  /** the stand-in edge's self-signed certificate, which the health checks verify against */
  caFile: string;
  team: string;
  stateDir: string;
  /** defaults.parallel and the stage's parallel; undefined keeps the product's */
  parallel?: number;
  pollInterval: string;
}

export const INVENTORY_FILE = 'sites.csv';
export const FLEET_LABEL = 'fleet=sites';

export function siteNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `site-${String(i + 1).padStart(4, '0')}`);
}

export function inventoryCsv(names: string[]): string {
  return ['name,labels', ...names.map((n) => `${n},${FLEET_LABEL}`), ''].join('\n');
}

const q = (s: string) => JSON.stringify(s);

export function vercelFleetConfig(o: VercelFleetOptions): string {
  const parallel = o.parallel === undefined ? [] : [`  parallel: ${o.parallel}`];
  return [
    `# homelab-deploy benchmark: ${o.names.length} Vercel sites from ${INVENTORY_FILE}, against a local stand-in of the Vercel API`,
    'version: 1',
    'project: bench-sites',
    'defaults:',
    ...parallel,
    '  vercel:',
    `    team: ${o.team}`,
    '    token_env: VERCEL_TOKEN',
    `    api: ${q(o.apiUrl)}`,
    '    repo: example/sites',
    '    promote: production',
    '    plan: pro',
    `    poll_interval: ${o.pollInterval}`,
    `    state: { path: ${q(o.stateDir)} }`,
    'inventory:',
    `  - file: ${INVENTORY_FILE}`,
    '    kind: vercel',
    '    template: { project: "{{row.name}}", domains: ["{{row.name}}.example.com"] }',
    'stages:',
    '  - name: sites',
    `    hosts: [${q(FLEET_LABEL)}]`,
    ...(o.parallel === undefined ? [] : [`    parallel: ${o.parallel}`]),
    'health:',
    '  - name: health',
    '    http: "{{target.url}}/health"',
    `    ca_file: ${q(o.caFile)}`,
    '    expect: { status: 200, release: "json:release" }',
    '    interval: 50ms',
    '    retries: 1',
    '    timeout: 5s',
    '',
  ].join('\n');
}
