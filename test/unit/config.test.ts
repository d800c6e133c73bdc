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

  it('rejects unknown hosts in stages with a suggestion, and missing host-key config', () => {
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
    expect(err.issues.find((i) => i.path === 'hosts.thinkpad.ssh')?.message).toContain(
      'host keys are always verified',
    );
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
