import { loadConfig } from '../../src/config/load';
import { ConfigError } from '../../src/config/errors';
import { MINIMAL, writeConfig } from '../fixtures/config';

function errorOf(text: string): ConfigError {
  try {
    loadConfig(writeConfig(text));
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('reproduces the seed pipeline from stage tags', () => {
    const c = loadConfig(writeConfig(MINIMAL));
    expect(c.stages.map((s) => s.name)).toEqual(['staging', 'production', 'public']);
    expect(c.stages[0].onFailure).toBe('rollback-all');
    expect(c.stages[1].onFailure).toBe('rollback-all');
    const pub = c.stages[2];
    expect(pub.onFailure).toBe('rollback-stage');
    expect(pub.retry).toMatchObject({ attempts: 3, delayMs: 5000, factor: 2 });
    expect(pub.retry.on).not.toContain('host-key');
    expect(pub.retry.on).not.toContain('auth');
    expect(c.hosts.vps.ssh).toMatchObject({ port: 2222, jump: 'thinkpad', user: 'deploy' });
    expect(c.hosts.thinkpad.minFreeDiskBytes).toBe(10e9);
    expect(c.hosts.thinkpad.deploy).toMatchObject({
      strategy: 'compose',
      command: 'docker compose',
      files: ['compose.yaml'],
    });
    expect(c.hosts.thinkpad.runtimeCheck).toBe('docker info >/dev/null');
  });

  it('names the file, path and line of an unknown key and suggests the nearest one', () => {
    const err = errorOf(
      MINIMAL.replace('hosts:\n', 'hots: {}\nhosts:\n').replace(
        'stage: staging }',
        'stage: staging, adress: x }',
      ),
    );
    expect(err.message).toContain('deploy.yml');
    const hots = err.issues.find((i) => i.path === 'hots');
    expect(hots?.message).toBe('unknown key "hots"; did you mean "hosts"?');
    expect(hots?.line).toBe(5);
    const adress = err.issues.find((i) => i.path === 'hosts.thinkpad.adress');
    expect(adress?.message).toContain('did you mean "address"?');
    expect(adress?.line).toBe(7);
  });

  it('reports every problem at once, with expected values', () => {
    const err = errorOf(`version: 1
project: App!
hosts:
  thinkpad: { address: 192.0.2.10, stage: staging, ssh: { port: 70000, known_hosts: kh, key: k } }
  rtx1080: { address: 192.0.2.11, stage: prod, ssh: { known_hosts: kh, key: k } }
health:
  - { http: "http://x/", timeout: soon }
`);
    const paths = err.issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'project',
        'hosts.thinkpad.ssh.port',
        'hosts.rtx1080.stage',
        'health.0.timeout',
      ]),
    );
    expect(err.issues.find((i) => i.path === 'hosts.rtx1080.stage')?.message).toContain(
      '"staging", "production", "public"',
    );
    expect(err.issues.find((i) => i.path === 'health.0.timeout')?.message).toContain('"soon"');
    expect(err.issues.every((i) => i.line !== undefined)).toBe(true);
  });

  it('rejects unknown hosts in stages with a suggestion; a host without known_hosts is a note, not an error', () => {
    const err = errorOf(`version: 1
project: app
hosts:
  thinkpad: { address: 192.0.2.10, ssh: { key: k } }
stages:
  - { name: staging, hosts: [thinkpd] }
`);
    expect(err.issues.find((i) => i.path === 'stages.0.hosts.0')?.message).toBe(
      'unknown host "thinkpd"; did you mean "thinkpad"?',
    );
    expect(err.issues.map((i) => i.path)).toEqual(['stages.0.hosts.0']);
    const ok = loadConfig(
      writeConfig(`version: 1
project: app
hosts:
  thinkpad: { address: 192.0.2.10, ssh: { key: k } }
stages:
  - { name: staging, hosts: [thinkpad] }
`),
    );
    expect(ok.notes).toEqual([
      {
        path: 'hosts.thinkpad.ssh',
        line: 4,
        column: 41,
        message:
          'no "known_hosts" file or "fingerprints": this host needs the action\'s known-hosts input or DEPLOY_KNOWN_HOSTS (host keys are always verified) at run time',
      },
    ]);
  });

  it('notes once, at defaults.ssh, when no host names a key or host keys', () => {
    const c = loadConfig(
      writeConfig(`version: 1
project: app
defaults: { ssh: { user: deploy } }
hosts:
  a: { address: 192.0.2.1, stage: staging }
  b: { address: 192.0.2.2, stage: production }
`),
    );
    expect(c.notes?.map((n) => [n.path, n.line, n.message])).toEqual([
      [
        'defaults.ssh',
        3,
        `no host sets private key ("key" or "key_env"): every host needs the action's ssh-key input or DEPLOY_SSH_KEY at run time`,
      ],
      [
        'defaults.ssh',
        3,
        `no host sets "known_hosts" file or "fingerprints": every host needs the action's known-hosts input or DEPLOY_KNOWN_HOSTS (host keys are always verified) at run time`,
      ],
    ]);
    expect(loadConfig(writeConfig(MINIMAL)).notes).toEqual([]);
  });

  it('reports schema errors and cross-reference errors in one pass', () => {
    const err = errorOf(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: kh } }
hosts:
  thinkpad: { address: 192.0.2.10, ssh: { port: 70000 } }
  vps: { address: 192.0.2.12, ssh: { jump: thinkpda } }
stages:
  - { name: staging, hosts: [thinkpd], tests: { run: "true", on: vps } }
  - { name: verify, hosts: [vps], retry: { attempts: 0 } }
  - { name: staging, hosts: [vps, Bad] }
`);
    const got = err.issues.map((i) => [i.path, i.line, i.message]);
    expect(got).toEqual(
      expect.arrayContaining([
        ['hosts.thinkpad.ssh.port', 5, 'expected an integer from 1 to 65535, got 70000'],
        ['stages.1.retry.attempts', 9, 'expected an integer from 1 to 20, got 0'],
        [
          'stages.2.hosts.1',
          10,
          `expected a host name of lower-case letters, digits, '-' or '_' (max 63), got "Bad"`,
        ],
        ['hosts.vps.ssh.jump', 6, 'unknown host "thinkpda"; did you mean "thinkpad"?'],
        ['stages.0.hosts.0', 8, 'unknown host "thinkpd"; did you mean "thinkpad"?'],
        ['stages.0.tests.on', 8, 'expected "runner" or a host of stage "staging" (thinkpd), got "vps"'],
        ['stages.2.name', 10, 'stage "staging" is declared twice'],
        ['stages.2.hosts', 10, 'host "vps" is already in stage "verify"; a host belongs to one stage'],
        ['stages.1.name', 9, '"verify" is a phase name; choose another stage name'],
      ]),
    );
    // "Bad" fails the name rule; it is not reported a second time as an unknown host.
    expect(err.issues.filter((i) => i.path === 'stages.2.hosts.1')).toHaveLength(1);
  });

  it.each([
    ['srv/app', 'expected an absolute path such as /srv/homelab/app'],
    ['/srv/$(touch /tmp/x)', 'contains "$"'],
    ['/srv/`id`', 'contains "`"'],
    ["/srv/it's", `contains "'"`],
    ['/srv/"q"', 'contains "\\""'],
    ['/srv/a\nb', 'a path cannot contain a line break'],
    ['/srv/a b', 'contains " "'],
    ['/srv/a;rm', 'contains ";"'],
    ['/srv/../etc', 'has a ".." segment'],
    ['/srv/app/..', 'has a ".." segment'],
    ['/', 'the filesystem root cannot be a deploy path'],
  ])('rejects the deploy path %j, naming file, line and key', (p, why) => {
    const err = errorOf(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: kh } }
hosts:
  a: { address: 192.0.2.1, stage: staging, path: ${JSON.stringify(p)} }
`);
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toMatchObject({ path: 'hosts.a.path', line: 5 });
    expect(err.issues[0].message).toContain(why);
    expect(err.message).toMatch(/deploy\.yml:5:\d+: hosts\.a\.path: /);
  });

  it('accepts ordinary absolute paths, in defaults too', () => {
    const c = loadConfig(
      writeConfig(`version: 1
project: app
defaults: { path: /srv/homelab/app-1, ssh: { key: k, known_hosts: kh } }
hosts:
  a: { address: 192.0.2.1, stage: staging }
  b: { address: 192.0.2.2, stage: production, path: /opt/deploy/b_2.0+x@y }
`),
    );
    expect([c.hosts.a.path, c.hosts.b.path]).toEqual(['/srv/homelab/app-1', '/opt/deploy/b_2.0+x@y']);
    const err = errorOf(`version: 1
project: app
defaults: { path: "/srv/$HOME", ssh: { key: k, known_hosts: kh } }
hosts:
  a: { address: 192.0.2.1, stage: staging }
`);
    expect(err.issues.map((i) => [i.path, i.line])).toEqual([['defaults.path', 3]]);
  });

  it('rejects shell syntax in values that run unquoted: compose.command, an address read as an option', () => {
    const err = errorOf(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: kh, max_channels: 1 } }
hosts:
  a: { address: -oProxyCommand=x, stage: staging }
  b: { address: 192.0.2.2, stage: production, deploy: { compose: { command: "docker compose; touch /tmp/x" } } }
  c: { address: 192.0.2.3, stage: public, vars: { my-port: 1, my_port: 2 } }
`);
    expect(err.issues.map((i) => i.path).sort()).toEqual([
      'defaults.ssh.max_channels',
      'hosts.a.address',
      'hosts.b.deploy.compose.command',
    ]);
    expect(err.issues.find((i) => i.path === 'hosts.b.deploy.compose.command')?.message).toContain(
      'no quotes, $, ;, | or other shell syntax',
    );
    const vars = errorOf(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: kh } }
hosts:
  c: { address: 192.0.2.3, stage: public, vars: { my-port: 1, my_port: 2 } }
`);
    expect(vars.issues.map((i) => [i.path, i.message])).toEqual([
      [
        'hosts.c.vars.my_port',
        'vars "my-port" and "my_port" both become HD_VAR_MY_PORT in the host\'s environment; rename one',
      ],
    ]);
    const ok = loadConfig(
      writeConfig(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: kh, command_timeout: 90s } }
hosts:
  a: { address: 192.0.2.1, stage: staging, deploy: { compose: { command: podman-compose --podman-path /usr/bin/podman } } }
`),
    );
    expect(ok.hosts.a.deploy).toMatchObject({ command: 'podman-compose --podman-path /usr/bin/podman' });
    expect(ok.hosts.a.ssh.commandTimeoutMs).toBe(90_000);
  });

  it('reports YAML syntax errors with a line', () => {
    const err = errorOf('version: 1\nproject: [unclosed\n');
    expect(err.issues[0].message).toMatch(/^YAML syntax/);
    expect(err.issues[0].line).toBeGreaterThan(0);
  });

  it('rejects duplicate keys and a host in two stages', () => {
    const err = errorOf(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: kh } }
hosts:
  a: { address: 192.0.2.1 }
stages:
  - { name: one, hosts: [a] }
  - { name: two, hosts: [a] }
`);
    expect(err.issues.some((i) => i.message.includes('already in stage "one"'))).toBe(true);
  });

  it('says so when the file is missing', () => {
    expect(() => loadConfig('/nonexistent/deploy.yml')).toThrow('/nonexistent/deploy.yml: file not found');
  });
});
