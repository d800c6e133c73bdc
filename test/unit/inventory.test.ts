import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, MAX_LISTED_PER_INVENTORY } from '../../src/config/errors';
import { loadConfig } from '../../src/config/load';
import type { HostConfig, RunnerTargetConfig, VercelTargetConfig } from '../../src/config/types';
import { writeConfig } from '../fixtures/config';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'inventory');

/** A config in a fresh directory, with inventory fixtures copied next to it and extra files written there. */
function setup(
  config: string,
  fixtures: string[] = [],
  files: Record<string, string> = {},
): { file: string; dir: string } {
  const file = writeConfig(config);
  const dir = path.dirname(file);
  for (const f of fixtures) fs.copyFileSync(path.join(FIXTURES, f), path.join(dir, f));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return { file, dir };
}

function rejected(config: string, fixtures: string[] = [], files: Record<string, string> = {}) {
  const { file, dir } = setup(config, fixtures, files);
  try {
    loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) return { err, file, dir };
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const SITES = `version: 1
project: shops
defaults:
  vercel: { team: team_example, repo: example/storefront }
inventory:
  - file: sites.csv
    kind: vercel
    defaults: { labels: { fleet: shops }, promote: preview }
    template:
      project: "{{row.name}}"
      domains: ["{{row.name}}.example.com"]
      vars: { customer: "{{row.customer}}" }
stages:
  - { name: canary, hosts: ["tier=canary"] }
  - { name: eu, hosts: ["region=eu,tier=web"] }
  - { name: rest, hosts: ["tier=web,region!=eu"] }
`;

describe('inventory files', () => {
  it('loads 1500 Vercel sites from CSV: template, defaults, labels, vars, quoted fields, stages by label', () => {
    const { file } = setup(SITES, ['sites.csv']);
    const config = loadConfig(file);
    expect(Object.keys(config.targets)).toHaveLength(1500);
    expect(Object.keys(config.hosts)).toHaveLength(0);
    const site = (n: string) => config.targets[n] as VercelTargetConfig;
    expect(site('shop-0003')).toMatchObject({
      kind: 'vercel',
      name: 'shop-0003',
      project: 'shop-0003',
      team: 'team_example',
      promote: 'preview',
      source: { type: 'git', provider: 'github', repo: 'example/storefront' },
      domains: ['shop-0003.example.com'],
      labels: { fleet: 'shops', region: 'eu', tier: 'canary' },
      vars: { customer: 'Nord\nSüd GmbH', locale: 'de-DE' },
    });
    // Quoted CSV fields: a comma, doubled quotes.
    expect(site('shop-0001').vars.customer).toBe('Müller, Hans & Co');
    expect(site('shop-0002').vars.customer).toBe('The "Blue" Shop');
    // A row's own cell wins over the template; a list cell is split at ";".
    expect(site('shop-0100').domains).toEqual(['shop-0100.example.com', 'www.shop-0100.example.com']);

    const [canary, eu, rest] = config.stages;
    expect(canary.targets).toEqual(
      Array.from({ length: 15 }, (_, i) => `shop-${String(i + 1).padStart(4, '0')}`),
    );
    expect(eu.targets).toHaveLength(495);
    expect(eu.targets.every((t) => site(t).labels.region === 'eu' && site(t).labels.tier === 'web')).toBe(
      true,
    );
    expect(rest.targets).toHaveLength(990);
    expect(rest.targets).not.toContain('shop-0018');
    expect(new Set([...canary.targets, ...eu.targets, ...rest.targets]).size).toBe(1500);
    // Over 50 targets a stage rolls out as a fleet.
    expect(canary.rollout).toBeUndefined();
    expect(eu.rollout).toMatchObject({ implicit: true, maxFailPercentage: 5 });
  });

  it("loads SSH hosts from YAML ({targets: [...]}) beside the config's own hosts; stages select them by label", () => {
    const { file } = setup(
      `version: 1
project: app
defaults:
  ssh: { key: id_deploy, known_hosts: known_hosts }
hosts:
  gateway: { address: gw.example.com, labels: { region: eu, role: gateway } }
inventory:
  - file: hosts.yml
    defaults: { ssh: { user: ops }, labels: { team: platform } }
    template: { path: "/srv/{{row.labels.role}}/{{row.name}}" }
stages:
  - { name: eu, hosts: ["region=eu"] }
  - { name: us, hosts: ["region=us"] }
`,
      ['hosts.yml'],
    );
    const config = loadConfig(file);
    expect(Object.keys(config.hosts)).toEqual(['gateway', 'web-eu-1', 'web-eu-2', 'web-us-1', 'db-eu-1']);
    const host = (n: string) => config.hosts[n] as HostConfig;
    expect(host('web-eu-1')).toMatchObject({
      kind: 'ssh',
      address: '192.0.2.11',
      path: '/srv/web/web-eu-1',
      labels: { team: 'platform', region: 'eu', role: 'web' },
      vars: { http_port: '8080' },
      ssh: { user: 'ops', port: 22, key: path.join(path.dirname(file), 'id_deploy') },
    });
    // Mappings merge (defaults.ssh.user with the row's ssh.port); the row's own path wins over the template's.
    expect(host('web-us-1').ssh).toMatchObject({ user: 'ops', port: 2222 });
    expect(host('db-eu-1').path).toBe('/srv/db');
    expect(config.stages.map((s) => [s.name, s.targets])).toEqual([
      ['eu', ['gateway', 'web-eu-1', 'web-eu-2', 'db-eu-1']],
      ['us', ['web-us-1']],
    ]);
  });

  it('loads runner targets from a JSON list, with stage tags forming the default pipeline', () => {
    const { file } = setup(
      `version: 1
project: api
inventory:
  - file: runners.json
    kind: runner
    template:
      current: "cat state/{{row.name}}.version"
      up: "./deploy.sh {{row.vars.cluster}}"
      rollback: "./deploy.sh {{row.vars.cluster}} \\"$HD_PREVIOUS\\""
`,
      ['runners.json'],
    );
    const config = loadConfig(file);
    const api = (n: string) => config.targets[n] as RunnerTargetConfig;
    expect(api('api-us')).toMatchObject({
      kind: 'runner',
      stageTag: 'production',
      current: 'cat state/api-us.version',
      up: './deploy.sh us-1',
      rollback: './deploy.sh us-1 "$HD_PREVIOUS"',
      timeoutMs: 20 * 60_000,
      labels: { region: 'us' },
      vars: { cluster: 'us-1' },
    });
    expect(config.stages.map((s) => [s.name, s.targets])).toEqual([
      ['staging', ['api-eu']],
      ['production', ['api-us']],
    ]);
  });

  it('reads CSV columns as fields: label.<k>, var.<k>, a labels cell, dotted paths, numbers; template-only columns', () => {
    const { file } = setup(
      `version: 1
project: app
defaults: { ssh: { key: k, known_hosts: known_hosts } }
inventory:
  - file: hosts.csv
    template: { path: "/srv/{{row.customer}}", vars: { site: "{{row.customer}}-{{row.label.tier}}" } }
stages:
  - { name: web, hosts: ["tier=web"] }
  - { name: db, hosts: ["db-*"] }
`,
      [],
      {
        'hosts.csv': [
          'name,address,labels,label.tier,ssh.port,keep_releases,var.http_port,customer',
          'web-1,192.0.2.1,region=eu;tier=canary;rack=r1,web,2222,3,8080,acme',
          'db-1,192.0.2.2, region = us ,db,,,,"acme"',
        ].join('\n'),
      },
    );
    const config = loadConfig(file);
    expect(config.hosts['web-1']).toMatchObject({
      address: '192.0.2.1',
      labels: { region: 'eu', tier: 'web', rack: 'r1' },
      ssh: { port: 2222 },
      keepReleases: 3,
      vars: { http_port: '8080', site: 'acme-web' },
      path: '/srv/acme',
    });
    expect(config.hosts['db-1']).toMatchObject({ labels: { region: 'us', tier: 'db' }, ssh: { port: 22 } });
    expect(config.stages.map((s) => s.targets)).toEqual([['web-1'], ['db-1']]);
  });
});

describe('inventory notes', () => {
  it('a note about a host from an inventory names the file and the row', () => {
    const { file, dir } = setup(
      `version: 1
project: app
defaults: { ssh: { key: k } }
hosts:
  gw: { address: gw.example.com, stage: staging, ssh: { known_hosts: known_hosts } }
inventory: [{ file: h.csv, defaults: { stage: production } }]
`,
      [],
      { 'h.csv': 'name,address\nweb-1,192.0.2.1\nweb-2,192.0.2.2\n' },
    );
    const notes = loadConfig(file).notes ?? [];
    const message =
      'no "known_hosts" file or "fingerprints": this host needs the action\'s known-hosts input or DEPLOY_KNOWN_HOSTS (host keys are always verified) at run time';
    expect(notes).toEqual([
      { file: path.join(dir, 'h.csv'), line: 2, path: 'hosts.web-1.ssh', message },
      { file: path.join(dir, 'h.csv'), line: 3, path: 'hosts.web-2.ssh', message },
    ]);
  });
});

describe('inventory errors name the file, line, column or key, the value and what was expected', () => {
  it('a bad CSV row: its line (after a quoted field spanning two lines) and its column', () => {
    const { err, file, dir } = rejected(
      `version: 1
project: shops
defaults: { vercel: { repo: example/storefront } }
inventory:
  - { file: bad-row.csv, kind: vercel }
stages:
  - { name: shops, hosts: ["shop-*"] }
`,
      ['bad-row.csv'],
    );
    const csv = path.join(dir, 'bad-row.csv');
    expect(err.message).toBe(
      [
        `3 problems in ${file} and ${csv}:`,
        `  ${csv}:4: targets.shop-b.project: column "project": expected a Vercel project id (prj_...) or name, got "Shop B!"`,
        `  ${csv}:5: targets.shop-c.labels.region: column "label.region": expected a label value of letters, digits, "_", "-", ".", ":", "/", a number or a boolean (true or false), got "eu west"`,
        `  ${csv}:6: targets.shop-d.stage: column "stage": expected one of "staging", "production", "public", got "prod"; did you mean "production"?`,
      ].join('\n'),
    );
    expect(err.issues.map((i) => [i.file, i.line])).toEqual([
      [csv, 4],
      [csv, 5],
      [csv, 6],
    ]);
  });

  it('a bad YAML row: line and column of the value, or of the unknown key', () => {
    const { err, dir } = rejected(
      `version: 1
project: app
defaults: { ssh: { key: k, known_hosts: known_hosts } }
inventory:
  - file: bad-row.yml
stages:
  - { name: web, hosts: ["web-*"] }
`,
      ['bad-row.yml'],
    );
    const yml = path.join(dir, 'bad-row.yml');
    expect(err.issues).toEqual([
      {
        file: yml,
        path: 'hosts.web-2.address',
        line: 5,
        column: 12,
        message: 'expected a host name or IP address, got "-oProxyCommand=x"',
      },
      {
        file: yml,
        path: 'hosts.web-3.colour',
        line: 9,
        column: 3,
        message:
          'unknown key "colour"; valid keys: address, stage, vars, labels, snapshot, ssh, path, deploy, runtime_check, min_free_disk, keep_releases',
      },
    ]);
  });

  it('a key a row lacks: at the row, in YAML and in CSV', () => {
    const { err } = rejected(
      `version: 1
project: app
defaults: { ssh: { key: k, known_hosts: kh } }
inventory: [{ file: h.yml }, { file: h.csv }]
stages: [{ name: web, hosts: ["web-*"] }]
`,
      [],
      {
        'h.yml': '# hosts\n- name: web-1\n  labels: { role: web }\n',
        'h.csv': 'name,stage\nweb-2,staging\n',
      },
    );
    const missing = 'required key is missing (expected a host name or IP address)';
    expect(
      err.issues.map((i) => [i.file && path.basename(i.file), i.line, i.column, i.path, i.message]),
    ).toEqual([
      ['h.csv', 2, undefined, 'hosts.web-2.address', missing],
      ['h.yml', 2, 3, 'hosts.web-1.address', missing],
    ]);
  });

  it('a bad JSON row: line and column of the value in the file', () => {
    const { err, dir } = rejected(
      `version: 1
project: app
defaults: { ssh: { key: k, known_hosts: known_hosts } }
inventory: [{ file: bad-row.json }]
stages: [{ name: db, hosts: ["db-*"] }]
`,
      ['bad-row.json'],
    );
    expect(err.message.split('\n')[1]).toBe(
      `  ${path.join(dir, 'bad-row.json')}:7:24: hosts.db-2.ssh.port: expected an integer from 1 to 65535, got 70000`,
    );
    expect(err.issues).toHaveLength(1);
  });

  it('a row name that breaks the naming rule, in CSV and in YAML', () => {
    const { err, dir } = rejected(
      `version: 1
project: app
defaults: { ssh: { key: k, known_hosts: kh } }
inventory: [{ file: h.csv }, { file: h.yml }]
stages: [{ name: web, hosts: ["role=web"] }]
`,
      [],
      {
        'h.csv': 'name,address,label.role\nWeb 1,192.0.2.1,web\n',
        'h.yml':
          '- name: web-2\n  address: 192.0.2.2\n  labels: { role: web }\n- name: Web_3\n  address: 192.0.2.3\n',
      },
    );
    const want = "expected a host name of lower-case letters, digits, '-' or '_' (max 63), got";
    expect(
      err.issues.map((i) => [i.file && path.basename(i.file), i.line, i.column, i.path, i.message]),
    ).toEqual([
      ['h.csv', 2, undefined, 'hosts.Web 1', `column "name": ${want} "Web 1"`],
      ['h.yml', 4, 9, 'hosts.Web_3', `${want} "Web_3"`],
    ]);
    expect(err.issues[0].file).toBe(path.join(dir, 'h.csv'));
  });

  it('a name used twice: by two rows, or by a row and the config', () => {
    const { err, dir } = rejected(
      `version: 1
project: shops
defaults: { vercel: { repo: example/storefront } }
targets:
  shop-b: { kind: vercel, project: shop-b, stage: staging }
inventory:
  - { file: duplicate-names.csv, kind: vercel, defaults: { stage: production } }
`,
      ['duplicate-names.csv'],
    );
    const csv = path.join(dir, 'duplicate-names.csv');
    expect(err.issues.map((i) => [i.file, i.line, i.path, i.message])).toEqual([
      [
        csv,
        3,
        'targets.shop-b',
        'the name "shop-b" is already used by targets.shop-b in the config; hosts, targets and inventory rows share one set of names',
      ],
      [
        csv,
        4,
        'targets.shop-a',
        `the name "shop-a" is already used by the row at ${csv}:2; names are unique`,
      ],
    ]);
  });

  it('a file that is missing, empty, a directory, of no known format, or not CSV', () => {
    const { err, file, dir } = rejected(
      `version: 1
project: app
inventory:
  - file: missing.csv
  - file: empty.csv
  - file: sub
  - file: hosts.txt
  - file: unclosed-quote.csv
`,
      ['empty.csv', 'unclosed-quote.csv'],
      { 'hosts.txt': 'web-1\n' },
    );
    const at = (f: string) => path.join(dir, f);
    expect(err.issues.map((i) => [i.file, i.line, i.message])).toEqual([
      [
        at('empty.csv'),
        undefined,
        'the inventory file is empty; expected a header row (name,...) and one row per target',
      ],
      [
        at('hosts.txt'),
        undefined,
        'an inventory is a .csv, .json, .yml or .yaml file; cannot tell the format of "hosts.txt"',
      ],
      [at('missing.csv'), undefined, `inventory file not found (looked for ${at('missing.csv')})`],
      [
        at('sub'),
        undefined,
        'an inventory is a .csv, .json, .yml or .yaml file; cannot tell the format of "sub"',
      ],
      [
        at('unclosed-quote.csv'),
        3,
        'CSV syntax: a quoted field is not closed: a " opens it here and no " ends it',
      ],
    ]);
    expect(err.message.split('\n')[0]).toBe(`5 problems in ${file} and 5 inventory files:`);
    // An absolute path is used as written; here it names a directory.
    fs.mkdirSync(path.join(dir, 'sub.yml'));
    const again = rejected(`version: 1\nproject: app\ninventory: [{ file: ${path.join(dir, 'sub.yml')} }]\n`);
    expect(again.err.issues.find((i) => i.file !== undefined)?.message).toBe(
      'is a directory; expected an inventory file',
    );
  });

  it('CSV structure: no name column, a duplicate column, a header only, a row of the wrong width, an empty name', () => {
    const cases: [string, [number, string][]][] = [
      [
        'address,stage\n192.0.2.1,staging\n',
        [
          [
            1,
            'the header has no "name" column (every row needs the target\'s name); columns are: address, stage',
          ],
        ],
      ],
      ['name,address,name\na,192.0.2.1,b\n', [[1, 'column "name" appears twice in the header']]],
      ['name,address\n', [[1, 'the inventory has a header but no rows']]],
      [
        'name,address\na,192.0.2.1,extra\n,192.0.2.2\n',
        [
          [2, 'the row has 3 fields and the header 2; a value holding a comma or a line break needs quotes'],
          [3, 'the row has no "name" (every row needs the target\'s name)'],
        ],
      ],
    ];
    for (const [csv, want] of cases) {
      const { err } = rejected(`version: 1\nproject: app\ninventory: [{ file: h.csv }]\n`, [], {
        'h.csv': csv,
      });
      expect(err.issues.filter((i) => i.file !== undefined).map((i) => [i.line, i.message])).toEqual(want);
    }
  });

  it('YAML and JSON structure: syntax errors with their line, rows that are not mappings, names that are not text', () => {
    const cases: [string, string, [number | undefined, string][]][] = [
      [
        'h.yml',
        '- name: a\n  address: [unclosed\n',
        [
          [
            3,
            'YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
          ],
        ],
      ],
      ['h.json', '[\n  {"name": "a",}\n]\n', [[2, 'JSON syntax: Expected double-quoted property name']]],
      [
        'h.yml',
        'hosts:\n  - name: a\n',
        [
          [
            1,
            'expected a list of targets, or a mapping with only "targets:" holding that list; got the keys "hosts"',
          ],
        ],
      ],
      [
        'h.yml',
        '- just-a-name\n- name: 7\n- address: 192.0.2.1\n',
        [
          [1, 'expected a mapping of target fields with a "name", got the text "just-a-name"'],
          [2, "expected the target's name as text, got the number 7 (quote it)"],
          [3, 'the row has no "name" (every row needs the target\'s name)'],
        ],
      ],
      ['h.json', '{"targets": []}', [[1, 'the inventory has no rows']]],
    ];
    for (const [name, text, want] of cases) {
      const { err } = rejected(`version: 1\nproject: app\ninventory: [{ file: ${name} }]\n`, [], {
        [name]: text,
      });
      expect([name, err.issues.filter((i) => i.file !== undefined).map((i) => [i.line, i.message])]).toEqual([
        name,
        want,
      ]);
    }
  });

  it('a template placeholder no row can fill, and one some rows leave empty, are reported at the template', () => {
    const { err, file, dir } = rejected(
      `version: 1
project: app
defaults: { ssh: { key: k, known_hosts: known_hosts } }
inventory:
  - file: h.csv
    template:
      path: "/srv/{{row.customr}}"
      vars: { rack: "{{row.rack}}" }
stages: [{ name: all-hosts, hosts: ["*"] }]
`,
      [],
      { 'h.csv': 'name,address,customer,rack\na,192.0.2.1,acme,r1\nb,192.0.2.2,acme,\nc,192.0.2.3,acme,\n' },
    );
    const csv = path.join(dir, 'h.csv');
    expect(err.issues).toEqual([
      {
        path: 'inventory.0.template.path',
        line: 7,
        column: 13,
        message: `{{row.customr}}: ${csv} has no column "customr"; did you mean {{row.customer}}?`,
      },
      {
        path: 'inventory.0.template.vars.rack',
        line: 8,
        column: 21,
        message: `{{row.rack}} has no value in 2 rows at ${csv}:3, ${csv}:4 (an empty cell sets nothing)`,
      },
      // Every row failed to render, so no target was made and the stage's "*" matches nothing.
      { path: 'stages.0.hosts.0', line: 9, column: 37, message: 'selector "*" matches no target' },
    ]);
    expect(err.message).toContain(`${file}:7:13: inventory.0.template.path: {{row.customr}}`);
  });

  it('a mistake in the template is reported once, at the template, with how many rows share it', () => {
    const { err, file } = rejected(SITES.replace('project: "{{row.name}}"', 'project: "{{row.name}} shop"'), [
      'sites.csv',
    ]);
    expect(err.issues).toEqual([
      {
        path: 'targets.shop-0001.project',
        line: 10,
        column: 16,
        message: `expected a Vercel project id (prj_...) or name, got "shop-0001 shop" (from inventory.0.template, for ${path.join(path.dirname(file), 'sites.csv')}:2); likewise for 1499 more rows`,
      },
    ]);
  });

  it('lists the first problems of a large inventory and counts the rest; the issues keep them all', () => {
    const rows = Array.from({ length: 60 }, (_, i) => `h${i},192.0.2.${i + 1},prod`);
    const { err, dir } = rejected(
      `version: 1\nproject: app\ndefaults: { ssh: { key: k, known_hosts: kh } }\ninventory: [{ file: h.csv }]\n`,
      [],
      { 'h.csv': ['name,address,stage', ...rows].join('\n') },
    );
    const csv = path.join(dir, 'h.csv');
    expect(err.issues).toHaveLength(60);
    const lines = err.message.split('\n');
    expect(lines).toHaveLength(1 + MAX_LISTED_PER_INVENTORY + 1);
    expect(lines[1]).toBe(
      `  ${csv}:2: hosts.h0.stage: column "stage": expected one of "staging", "production", "public", got "prod"; did you mean "production"?`,
    );
    expect(lines[lines.length - 1]).toBe(`  ${csv}: 10 more problems in this file are not listed`);
  });

  it('refuses what a row alone decides in the template or defaults, and a row of another kind', () => {
    const { err, dir } = rejected(
      `version: 1
project: app
defaults: { vercel: { repo: example/storefront } }
inventory:
  - file: s.csv
    kind: vercel
    defaults: { name: x, stage: production }
    template: { kind: runner, project: "{{row.name}}" }
`,
      [],
      { 's.csv': 'name,kind\nshop-a,vercel\nshop-b,runner\n' },
    );
    expect(err.issues.map((i) => [i.file && path.relative(dir, i.file), i.line, i.path, i.message])).toEqual([
      [
        undefined,
        7,
        'inventory.0.defaults.name',
        'a target\'s name comes from its row (the "name" column or key), not from the defaults',
      ],
      [
        undefined,
        8,
        'inventory.0.template.kind',
        'the kind of an inventory\'s targets is set once, as inventory.0.kind (here "vercel")',
      ],
      [
        's.csv',
        3,
        'targets.shop-b.kind',
        'column "kind": the kind of an inventory\'s targets is set once, as inventory.0.kind ("vercel"); this row says "runner"',
      ],
    ]);
  });

  it('a column named __proto__ is an unknown key, never a change to what objects inherit', () => {
    const { err } = rejected(`version: 1\nproject: app\ninventory: [{ file: h.csv }]\n`, [], {
      'h.csv': 'name,address,__proto__.polluted,stage\na,192.0.2.1,yes,staging\n',
    });
    expect(err.issues.map((i) => [i.path, i.message])).toEqual([
      ['hosts.a.__proto__', expect.stringMatching(/^column "__proto__\.polluted": unknown key "__proto__"/)],
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
