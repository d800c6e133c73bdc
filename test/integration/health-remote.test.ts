import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { resolveHealth } from '../../src/config/resolve';
import { healthCheckSchema, type HealthCheckInput } from '../../src/config/schema';
import type { Config, TestsConfig } from '../../src/config/types';
import { runHealthCheck } from '../../src/health/run';
import { makeContext, type RunContext } from '../../src/run/context';
import { createTargets, type TargetSet } from '../../src/targets';
import { runTests } from '../../src/pipeline/tests-runner';
import { Redactor } from '../../src/secrets/redact';
import { writeConfig } from '../fixtures/config';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';

/**
 * Checks and tests that run on a host over real SSH (an OpenSSH server on loopback). The compose checks use the
 * real podman for podman-compose stacks, and a stand-in `docker compose` script printing what Docker Compose v2
 * prints (no Docker engine here).
 */
let sandbox: SshSandbox;
let dir: string;
const contexts: RunContext[] = [];

beforeAll(async () => {
  sandbox = await startSshSandbox({ names: ['box'] });
  dir = fs.mkdtempSync(path.join(sandbox.host('box').root, 'hc-'));
  // Stand-in for `docker compose`: logs its arguments, prints ps.json for `ps`, services.txt for `config`.
  fs.writeFileSync(
    path.join(dir, 'fake-compose'),
    `#!/bin/sh
here=$(dirname "$0")
echo "$*" >> "$here/calls.log"
case "$*" in
  *" ps --all --format json") cat "$here/ps.json" ;;
  *" config --services") [ -f "$here/services.txt" ] || { echo "no such file: compose.yaml" >&2; exit 14; }; cat "$here/services.txt" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
`,
    { mode: 0o755 },
  );
}, 60_000);
afterAll(async () => {
  for (const c of contexts) await targetsOf(c).closeAll();
  await sandbox?.stop();
});

const sets = new WeakMap<RunContext, TargetSet>();
const targetsOf = (ctx: RunContext): TargetSet => sets.get(ctx) as TargetSet;

function context(compose: string, project = 'shop'): { ctx: RunContext; config: Config } {
  const box = sandbox.host('box');
  const config = loadConfig(
    writeConfig(`version: 1
project: ${project}
defaults:
  ssh: { user: ${sandbox.user}, key: ${sandbox.userKeyPath}, known_hosts: ${sandbox.knownHostsPath} }
hosts:
  box:
    address: ${box.address}
    ssh: { port: ${box.port} }
    path: ${dir}/srv
    deploy: { strategy: compose, compose: { command: ${compose}, files: [compose.yaml, compose.prod.yaml] } }
    stage: staging
    vars: { note: "it's $(echo injected) \`id\`" }
`),
  );
  const ctx = makeContext(config, { runToken: 'hc', env: {}, redactor: new Redactor() });
  contexts.push(ctx);
  sets.set(ctx, createTargets(ctx));
  return { ctx, config };
}

const composeCheck = (extra: Record<string, unknown> = {}) =>
  resolveHealth(
    healthCheckSchema.parse({ compose: true, retries: 0, timeout: '20s', ...extra }) as HealthCheckInput,
    'containers',
  );

const line = (service: string, state = 'running', health = '') =>
  JSON.stringify({ Name: `shop-${service}-1`, Service: service, State: state, Health: health });

describe('compose check over SSH', () => {
  beforeEach(() => {
    fs.rmSync(path.join(dir, 'calls.log'), { force: true });
    fs.rmSync(path.join(dir, 'services.txt'), { force: true });
    fs.mkdirSync(path.join(dir, 'srv', 'current'), { recursive: true });
  });

  it('docker compose: a declared service that never got a container fails the check', async () => {
    const { ctx } = context(`${dir}/fake-compose`);
    fs.writeFileSync(path.join(dir, 'ps.json'), [line('web'), line('worker')].join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'services.txt'), 'web\nworker\ndb\n');
    const r = await runHealthCheck(ctx, targetsOf(ctx).get('box').healthSubject('staging'), composeCheck());
    expect(r.ok).toBe(false);
    expect(r.lastError).toContain('services not running/healthy: db: missing');
    // Both lists in one round trip, the service list with the release's compose files.
    expect(fs.readFileSync(path.join(dir, 'calls.log'), 'utf8').trim().split('\n')).toEqual([
      '-p shop ps --all --format json',
      '-p shop -f compose.yaml -f compose.prod.yaml config --services',
    ]);

    fs.writeFileSync(path.join(dir, 'ps.json'), [line('web'), line('worker'), line('db')].join('\n'));
    expect(
      await runHealthCheck(ctx, targetsOf(ctx).get('box').healthSubject('staging'), composeCheck()),
    ).toMatchObject({
      ok: true,
      attempts: 1,
    });
  });

  it('docker compose: an unreadable service list fails the check with the reason', async () => {
    const { ctx } = context(`${dir}/fake-compose`);
    fs.writeFileSync(path.join(dir, 'ps.json'), line('web'));
    const r = await runHealthCheck(ctx, targetsOf(ctx).get('box').healthSubject('staging'), composeCheck());
    expect(r.lastError).toContain("cannot list the stack's services (exit 14): no such file: compose.yaml");
  });

  it('docker compose: listed services are checked without asking for the service list', async () => {
    const { ctx } = context(`${dir}/fake-compose`);
    fs.writeFileSync(path.join(dir, 'ps.json'), `[${line('web')},${line('db', 'running', 'unhealthy')}]`);
    const r = await runHealthCheck(
      ctx,
      targetsOf(ctx).get('box').healthSubject('staging'),
      composeCheck({ compose: ['web', 'db'] }),
    );
    expect(r.lastError).toContain('services not running/healthy: db: unhealthy');
    expect(fs.readFileSync(path.join(dir, 'calls.log'), 'utf8')).not.toContain('config');
  });

  it('podman-compose: services come from the compose files, real podman lists the containers', async () => {
    if (!fs.existsSync('/usr/bin/podman'))
      throw new Error('this test lists containers with the real podman: apt-get install -y podman');
    // A project nobody runs: podman has no containers for it, so every declared service is missing.
    const { ctx } = context('podman-compose', `hc-none-${process.pid}`);
    const cur = path.join(dir, 'srv', 'current');
    fs.writeFileSync(
      path.join(cur, 'compose.yaml'),
      'services:\n  web: { image: localhost/app:1 }\n  batch: { image: localhost/app:1, deploy: { replicas: 0 } }\n',
    );
    fs.writeFileSync(path.join(cur, 'compose.prod.yaml'), 'services:\n  cache: { image: localhost/app:1 }\n');
    const r = await runHealthCheck(ctx, targetsOf(ctx).get('box').healthSubject('staging'), composeCheck());
    expect(r.lastError).toContain('services not running/healthy: web: missing, cache: missing');
    expect(r.lastError).not.toContain('batch');
  }, 60_000);
});

describe('tests phase', () => {
  const tests = (o: Partial<TestsConfig>): TestsConfig => ({
    run: 'true',
    on: 'runner',
    timeoutMs: 30_000,
    ...o,
  });

  it("on the runner: runs in the config file's directory and reads a relative JUnit path there", async () => {
    const { ctx, config } = context(`${dir}/fake-compose`);
    const junit = path.join(config.dir, 'reports', 'junit.xml');
    fs.mkdirSync(path.dirname(junit), { recursive: true });
    const r = await runTests(
      ctx,
      targetsOf(ctx),
      tests({
        run: `pwd; printf '<testsuites tests="4" failures="1"><testsuite tests="4"/></testsuites>' > reports/junit.xml; exit 3`,
        junit: 'reports/junit.xml',
      }),
      'staging',
      ['box'],
    );
    expect(r.outputTail.trim()).toBe(config.dir);
    expect(r).toMatchObject({ ok: false, exitCode: 3 });
    expect(r.junit).toEqual({ tests: 4, passed: 3, failures: 1, errors: 0, skipped: 0 });
  });

  it("on the runner: a JUnit file left by an earlier run is deleted, never reported as this run's", async () => {
    const { ctx, config } = context(`${dir}/fake-compose`);
    fs.writeFileSync(path.join(config.dir, 'junit.xml'), '<testsuite tests="99" failures="0"/>');
    const r = await runTests(ctx, targetsOf(ctx), tests({ run: 'exit 0', junit: 'junit.xml' }), 'staging', [
      'box',
    ]);
    expect(r.junit).toBeUndefined();
    expect(fs.existsSync(path.join(config.dir, 'junit.xml'))).toBe(false);
    expect(r.outputTail).toContain(
      `the tests wrote no JUnit report at ${path.join(config.dir, 'junit.xml')}`,
    );
  });

  it('on the runner: a timeout keeps what the tests printed', async () => {
    const { ctx } = context(`${dir}/fake-compose`);
    const r = await runTests(
      ctx,
      targetsOf(ctx),
      tests({ run: 'echo step-1-done; echo step-2-hangs; sleep 30', timeoutMs: 800 }),
      'staging',
      ['box'],
    );
    expect(r.exitCode).toBeNull();
    expect(r.outputTail).toMatch(
      /step-1-done\nstep-2-hangs\n\n\[homelab-deploy\] tests exceeded 1s and were killed$/,
    );
  });

  it('on a host: JUnit fetched over SSH, the stale file deleted first, values shell-quoted', async () => {
    const { ctx } = context(`${dir}/fake-compose`);
    const cur = path.join(dir, 'srv', 'current');
    fs.mkdirSync(path.join(cur, 'out'), { recursive: true });
    fs.writeFileSync(path.join(cur, 'out', 'junit.xml'), '<testsuite tests="99"/>');
    // A JUnit file from pytest: attributes spread over lines, many suites.
    const xml = [
      '<?xml version="1.0" encoding="utf-8"?>',
      '<testsuites>',
      ...Array.from(
        { length: 50 },
        (_, i) =>
          `<testsuite name="s${i}"\n  tests="2" failures="${i === 7 ? 1 : 0}"\n  errors="0" skipped="0">\n` +
          `<testcase name="a"><system-out>${'x'.repeat(8000)}</system-out></testcase></testsuite>`,
      ),
      '</testsuites>',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'junit.src'), xml);
    const r = await runTests(
      ctx,
      targetsOf(ctx),
      tests({
        on: 'box',
        run: `test ! -e out/junit.xml && cp ${dir}/junit.src out/junit.xml && echo "host={{host.name}} note={{host.vars.note}} release=$HD_RELEASE"`,
        junit: 'out/junit.xml',
      }),
      'staging',
      ['box'],
    );
    expect(r).toMatchObject({ ok: true, exitCode: 0 });
    expect(r.outputTail.trim()).toBe(`host=box note=it's $(echo injected) \`id\` release=${ctx.release.id}`);
    expect(r.junit).toEqual({ tests: 100, passed: 99, failures: 1, errors: 0, skipped: 0 });
  });

  it('on a host: a timeout keeps the output tail and says so', async () => {
    const { ctx } = context(`${dir}/fake-compose`);
    const t0 = Date.now();
    const r = await runTests(
      ctx,
      targetsOf(ctx),
      tests({ on: 'box', run: 'echo started; echo waiting-for-db >&2; sleep 60', timeoutMs: 1000 }),
      'staging',
      ['box'],
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.exitCode).toBeNull();
    expect(r.ok).toBe(false);
    expect(r.outputTail).toContain('started');
    expect(r.outputTail).toContain('waiting-for-db');
    expect(r.outputTail).toContain('[homelab-deploy] tests exceeded 1s and were killed');
  });
});
