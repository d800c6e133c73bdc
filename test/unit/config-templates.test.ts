import { loadConfig } from '../../src/config/load';
import { ConfigError } from '../../src/config/errors';
import { renderedTemplates, templateVariableNames, templateVariables } from '../../src/config/templates';
import type { Config, RunnerTargetConfig } from '../../src/config/types';
import { makeContext } from '../../src/run/context';
import { sshTemplateVars } from '../../src/targets/ssh/vars';
import { Redactor } from '../../src/secrets/redact';
import { writeConfig } from '../fixtures/config';

/** The config file and the problems it was rejected with. */
function rejected(text: string): { file: string; err: ConfigError } {
  const file = writeConfig(text);
  try {
    loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) return { file, err };
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const issues = (err: ConfigError) => err.issues.map((i) => [i.path, i.line, i.column, i.message]);

/** Three hosts, one stage each; `port` is set on two of them only. */
const FLEET = (health: string, extra = '') => `version: 1
project: app
defaults: { ssh: { key: k, known_hosts: known_hosts } }
hosts:
  thinkpad: { address: 192.0.2.10, stage: staging, vars: { port: 8080 } }
  rtx1080: { address: 192.0.2.11, stage: production, vars: { port: 8081 } }
  vps: { address: vps.example.com, stage: public, vars: { prot: 8082 } }
health:
${health}
${extra}`;

describe('templates are checked at load time, per target', () => {
  it('finds every placeholder of a check after a shell command that ends in one', () => {
    // Rendering `test -d {{host.path}}` once left the shared pattern's lastIndex at its end, and the next
    // template's placeholders before that offset were not seen: the typo below escaped the check.
    const { file, err } = rejected(
      FLEET('  - { command: "test -d {{host.path}}" }\n  - { http: "http://{{host.adress}}:8080/" }'),
    );
    expect(err.message).toBe(
      `1 problem in ${file}:\n  ${file}:10:13: health.1.http: unknown placeholder {{host.adress}} for hosts "thinkpad", "rtx1080", "vps"; did you mean {{host.address}}?`,
    );
  });

  it('an unknown placeholder names the check, quotes the placeholder and suggests the nearest name', () => {
    const { file, err } = rejected(FLEET('  - { name: app, http: "http://{{host.adress}}:8080/health" }'));
    expect(issues(err)).toEqual([
      [
        'health.0.http',
        9,
        24,
        'unknown placeholder {{host.adress}} for hosts "thinkpad", "rtx1080", "vps"; did you mean {{host.address}}?',
      ],
    ]);
    expect(err.message).toBe(
      `1 problem in ${file}:\n  ${file}:9:24: health.0.http: unknown placeholder {{host.adress}} for hosts "thinkpad", "rtx1080", "vps"; did you mean {{host.address}}?`,
    );
  });

  it('a host var that two hosts set but the third does not names the third', () => {
    const { err } = rejected(FLEET('  - http: "http://{{host.address}}:{{host.vars.port}}/health"'));
    expect(issues(err)).toEqual([
      [
        'health.0.http',
        9,
        11,
        '{{host.vars.port}} has no value for host "vps": it sets no vars.port ("thinkpad", "rtx1080" do); did you mean {{host.vars.prot}}?',
      ],
    ]);
  });

  it('an http check must render to an absolute http(s) URL; the message quotes template and result', () => {
    const { err } = rejected(
      FLEET(`  - http: "htp//{{host.address}}:8080/health"
  - http: "ftp://status.example.com/"`),
    );
    expect(issues(err)).toEqual([
      [
        'health.0.http',
        9,
        11,
        '"htp//{{host.address}}:8080/health" renders to "htp//192.0.2.10:8080/health" for host "thinkpad", which is not an absolute http(s) URL: it does not start with "http://" or "https://"; likewise for hosts "rtx1080", "vps"',
      ],
      [
        'health.1.http',
        10,
        11,
        '"ftp://status.example.com/" is not an absolute http(s) URL: its scheme is "ftp", expected http or https',
      ],
    ]);
  });

  it('a URL that breaks for one host only names that host (an IPv6 address without brackets)', () => {
    const { err } = rejected(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: known_hosts } }
hosts:
  a: { address: 192.0.2.1 }
  b: { address: "2001:db8::1" }
stages:
  - name: staging
    hosts: [a, b]
    health: [{ http: "http://{{host.address}}:8080/" }]
`);
    expect(issues(err)).toEqual([
      [
        'stages.0.health.0.http',
        10,
        22,
        '"http://{{host.address}}:8080/" renders to "http://2001:db8::1:8080/" for host "b", which is not an absolute http(s) URL: it does not parse as a URL (an IPv6 address needs brackets: http://[fd00::1]:8080/)',
      ],
    ]);
  });

  it('a tcp check must render to host:port with a port from 1 to 65535', () => {
    const { err } = rejected(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: known_hosts } }
hosts:
  a: { address: 192.0.2.1, stage: staging, vars: { db: 5432 } }
  b: { address: 192.0.2.2, stage: production, vars: { db: 70000 } }
  c: { address: 192.0.2.3, stage: public, vars: { db: 22x } }
health:
  - tcp: "{{host.address}}:{{host.vars.db}}"
  - tcp: "db.example.com:0"
`);
    expect(issues(err)).toEqual([
      [
        'health.0.tcp',
        9,
        10,
        '"{{host.address}}:{{host.vars.db}}" renders to "192.0.2.2:70000" for host "b", which is not host:port with a port from 1 to 65535: the port 70000 is not from 1 to 65535',
      ],
      [
        'health.0.tcp',
        9,
        10,
        '"{{host.address}}:{{host.vars.db}}" renders to "192.0.2.3:22x" for host "c", which is not host:port with a port from 1 to 65535: the port "22x" is not a number',
      ],
      [
        'health.1.tcp',
        10,
        10,
        '"db.example.com:0" is not host:port with a port from 1 to 65535: the port 0 is not from 1 to 65535',
      ],
    ]);
  });

  it('checks tests, command checks, headers and verify checks, each for the targets it runs for', () => {
    const { err } = rejected(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: known_hosts } }
hosts:
  a: { address: 192.0.2.1, vars: { port: 1 } }
  b: { address: 192.0.2.2 }
  c: { address: 192.0.2.3, vars: { port: 3 } }
stages:
  - name: staging
    hosts: [a, b]
    tests: { run: "curl -fsS http://{{host.address}}:{{host.vars.port}}/", on: a }
  - name: production
    hosts: [c]
    tests: { run: "cat <<'EOF'\\n{{host.name}}\\nEOF", on: runner }
    health:
      - { command: "test {{stage.nam}} = production" }
      - { http: "http://{{host.address}}/", headers: { X-Release: "{{release.idd}}", "Bad Name": x } }
verify:
  health:
    - { http: "https://{{host.vars.port}}.example.com/" }
`);
    expect(issues(err)).toEqual([
      [
        'stages.1.tests.run',
        14,
        19,
        '{{host.name}} stands in a quoted here-document, where no value can be expanded; use an unquoted delimiter',
      ],
      [
        'stages.1.health.0.command',
        16,
        20,
        'unknown placeholder {{stage.nam}} for host "c"; did you mean {{stage.name}}?',
      ],
      [
        'stages.1.health.1.headers.X-Release',
        17,
        67,
        'unknown placeholder {{release.idd}} for host "c"; did you mean {{release.id}}?',
      ],
      [
        'stages.1.health.1.headers.Bad Name',
        17,
        98,
        `header name "Bad Name" is not a valid HTTP header name (letters, digits and !#$%&'*+.^_\`|~-)`,
      ],
      [
        'verify.health.0.http',
        20,
        15,
        '{{host.vars.port}} has no value for host "b": it sets no vars.port ("a", "c" do)',
      ],
    ]);
    // The tests of "staging" run on "a" only, which has the var: no complaint about "b" there.
    expect(err.issues.some((i) => i.path === 'stages.0.tests.run')).toBe(false);
  });

  it('tests on the runner take the vars of any host of the stage, so every one must have them', () => {
    const { err } = rejected(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: known_hosts } }
hosts:
  a: { address: 192.0.2.1, stage: staging, vars: { url: "http://a.example.com" } }
  b: { address: 192.0.2.2, stage: staging }
tests: { run: "npx playwright test --base-url {{host.vars.url}}", on: runner }
`);
    expect(issues(err)).toEqual([
      ['tests.run', 7, 15, '{{host.vars.url}} has no value for host "b": it sets no vars.url ("a" does)'],
    ]);
  });

  it('accepts a config whose templates all render, and reports nothing for them', () => {
    const c = loadConfig(
      writeConfig(
        FLEET(
          `  - { http: "http://{{host.address}}:8080/health?release={{release.id}}", headers: { X-Host: "{{host.name}}" } }
  - { http: "https://[2001:db8::5]:8443/" }
  - { tcp: "{{host.address}}:22" }
  - { command: "test -d {{host.path}}/current && echo {{project}} {{stage.name}}" }
  - { compose: true }`,
          'tests: { run: "echo {{release.commit}} on {{host.name}}", on: thinkpad }',
        ),
      ),
    );
    expect(c.stages.map((s) => s.health.length)).toEqual([5, 5, 5]);
  });
});

describe('template variables and rendered values', () => {
  const config = loadConfig(
    writeConfig(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: known_hosts } }
hosts:
  thinkpad: { address: 192.0.2.10, stage: staging, vars: { port: 8080, token: hunter2-secret } }
  rtx1080: { address: 192.0.2.11, stage: production, vars: { port: 8081, token: t0k3n-value } }
  vps: { address: vps.example.com, stage: public, vars: { prot: 8082, token: t0k3n-value } }
health:
  - { name: app, http: "http://{{host.address}}:8080/health", headers: { X-Token: "{{host.vars.token}}" } }
`),
  );

  it('lists the names that exist for each target', () => {
    expect(templateVariableNames(config, 'thinkpad', 'staging')).toEqual([
      'host.name',
      'host.address',
      'host.path',
      'target.name',
      'target.address',
      'release.id',
      'release.commit',
      'project',
      'stage.name',
      'host.vars.port',
      'target.vars.port',
      'host.vars.token',
      'target.vars.token',
    ]);
    expect(templateVariableNames(config, 'vps', 'public')).toContain('host.vars.prot');
    expect(templateVariableNames(config, 'vps', 'public')).not.toContain('host.vars.port');
    expect(templateVariableNames(config, 'vps', undefined)).not.toContain('stage.name');
  });

  it('gives a runner target the names its health checks fill in, with run-time values left open', () => {
    const runner: RunnerTargetConfig = {
      kind: 'runner',
      name: 'cdk',
      labels: {},
      vars: { region: 'eu-west-1' },
      current: 'cat live',
      up: 'cdk deploy',
      rollback: 'cdk deploy --previous',
      cwd: '/srv',
      timeoutMs: 1000,
      state: { kind: 'dir', path: '/srv/state' },
    };
    const c: Config = { ...config, targets: { ...config.targets, cdk: runner } };
    expect(templateVariables(c, 'cdk', 'production')).toEqual({
      'target.name': 'cdk',
      'target.kind': 'runner',
      'host.name': 'cdk',
      previous: undefined,
      version: undefined,
      'release.id': undefined,
      'release.commit': undefined,
      project: 'app',
      'stage.name': 'production',
      'target.vars.region': 'eu-west-1',
      'host.vars.region': 'eu-west-1',
    });
    expect(templateVariableNames(c, 'cdk', 'production')).not.toContain('host.address');
  });

  it('has the names and values the run fills in', () => {
    const redactor = new Redactor();
    const ctx = makeContext(config, { runToken: 't', env: {}, redactor, commit: 'a'.repeat(40) });
    for (const [host, stage] of [
      ['thinkpad', 'staging'],
      ['vps', 'public'],
    ] as const) {
      expect(templateVariables(config, host, stage, ctx.release)).toEqual(
        sshTemplateVars(ctx, config.hosts[host], stage),
      );
    }
  });

  it('renders per target for plan, masking through the callback and leaving the release open', () => {
    const redactor = new Redactor();
    redactor.add('hunter2-secret', 'TOKEN');
    const mask = (t: string) => redactor.redact(t);
    expect(renderedTemplates(config, 'thinkpad', 'staging', mask)).toEqual([
      {
        where: 'health "app" http',
        template: 'http://{{host.address}}:8080/health',
        rendered: 'http://192.0.2.10:8080/health',
      },
      {
        where: 'health "app" headers.X-Token',
        template: '{{host.vars.token}}',
        rendered: '***',
      },
    ]);
    expect(renderedTemplates(config, 'vps', 'public', mask)[1].rendered).toBe('t0k3n-value');
    expect(renderedTemplates(config, 'vps', 'public', mask)[0].rendered).toBe(
      'http://vps.example.com:8080/health',
    );
    // Not a host of that stage: nothing is rendered for it there.
    expect(renderedTemplates(config, 'vps', 'staging', mask)).toEqual([]);
  });

  it('fills the release when one is given, and shows tests and verify checks for the hosts they run on', () => {
    const c = loadConfig(
      writeConfig(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: known_hosts } }
hosts:
  a: { address: 192.0.2.1 }
  b: { address: 192.0.2.2 }
stages:
  - { name: staging, hosts: [a, b], tests: { run: "echo {{release.commit}} {{host.name}}", on: b } }
verify:
  health: [{ name: live, http: "http://{{host.address}}/?r={{release.id}}" }]
`),
    );
    const release = { id: 'b'.repeat(12), commit: 'b'.repeat(40) };
    const id = (t: string) => t;
    expect(renderedTemplates(c, 'a', 'staging', id)).toEqual([
      {
        where: 'verify health "live" http',
        template: 'http://{{host.address}}/?r={{release.id}}',
        rendered: 'http://192.0.2.1/?r={{release.id}}',
      },
    ]);
    expect(renderedTemplates(c, 'b', 'staging', id, release).map((r) => [r.where, r.rendered])).toEqual([
      ['tests.run', `echo ${'b'.repeat(40)} b`],
      ['verify health "live" http', `http://192.0.2.2/?r=${'b'.repeat(12)}`],
    ]);
  });
});
