import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deploy } from '../../src/engine';
import { releaseIdFor } from '../../src/run/release';
import type { DeployEvent } from '../../src/run/events';
import type { Report } from '../../src/report/types';
import { Redactor } from '../../src/secrets/redact';
import { git } from '../fixtures/pipeline';
import { startNetnsHosts, type NetnsSandbox } from '../helpers/netns-hosts';

/**
 * Real compose stacks in real containers: three hosts, each its own network, mount and pid namespace with its own
 * sshd and podman storage, deployed to by the engine with podman-compose. Every claim is checked on the hosts
 * themselves: over HTTP against the containers (release served, SHA-256 of the secret the container holds) and
 * with commands inside each host's namespaces (podman state, env file, lock dir).
 */

const HOSTS = ['thinkpad', 'rtx1080', 'vps'];
const STACK = path.join(__dirname, '..', '..', 'examples', 'compose-stack');
// Secrets with every character a dotenv reader or a shell might interpret; each deploy has its own.
const S1 = `v1 s3cret $HOME 'single' "double" #hash =eq  two  spaces \\back `;
const S2 = `v2 p$a'ss "w#o=rd" x = y $(id) \`id\` \\n`;
const S3 = `v3 ' " # = $ never-reaches-a-container`;
const S4 = `v4 =#= '"' $PATH`;

let sandbox: NetnsSandbox;
let repo: string;
const timings: [string, number][] = [];
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const SECRETS: Record<string, string> = { v1: S1, v2: S2, v3: S3, v4: S4 };
/** Which deploy's secret a value (or its SHA-256) is, byte for byte; assertions name it, never print it. */
const whose = (valueOrSha: string | undefined) =>
  Object.keys(SECRETS).find((k) => SECRETS[k] === valueOrSha || sha(SECRETS[k]) === valueOrSha) ??
  'none of them';

function config(o: { project?: string; dir?: string } = {}): string {
  const hosts = HOSTS.map((h, i) => {
    const s = sandbox.host(h);
    return `  ${h}:\n    address: ${s.address}\n    stage: ${['staging', 'production', 'public'][i]}\n    path: ${s.root}/srv/${o.dir ?? 'sample'}`;
  }).join('\n');
  return `version: 1
project: ${o.project ?? 'sample'}
source: stack
defaults:
  ssh: { user: ${sandbox.user}, key: ${sandbox.userKeyPath}, known_hosts: ${sandbox.knownHostsPath}, connect_timeout: 10s }
  deploy:
    strategy: compose
    compose: { command: podman-compose, files: [compose.yaml], pull: false, up_flags: [--force-recreate] }
    timeout: 2m
  runtime_check: podman info >/dev/null
  min_free_disk: 100MB
hosts:
${hosts}
secrets: { keys: [SECRET_VALUE] }
health:
  - name: app
    http: "http://{{host.address}}:8080/health"
    expect: { status: 200, json: { status: ok }, release: "json:release" }
    interval: 500ms
    retries: 10
    timeout: 2s
  - name: containers
    compose: true
    interval: 500ms
    retries: 10
    timeout: 30s
# The seed pipeline (staging, production, public with 3 attempts and rollback of the VPS only), with a shorter
# backoff than the seed's 5 s so the test stays quick.
stages:
  - { name: staging, hosts: [thinkpad], on_failure: rollback-all }
  - { name: production, hosts: [rtx1080], on_failure: rollback-all }
  - { name: public, hosts: [vps], retry: { attempts: 3, delay: 1s, factor: 2 }, on_failure: rollback-stage }
`;
}

/** Commits the stack with `environment` lines changed (e.g. BROKEN), returns the release id. */
function commit(label: string, env: Record<string, string> = {}): string {
  const file = path.join(repo, 'stack', 'compose.yaml');
  let text = fs.readFileSync(path.join(STACK, 'compose.yaml'), 'utf8');
  for (const [k, v] of Object.entries(env)) {
    text = text.includes(`      ${k}: `)
      ? text.replace(new RegExp(`^      ${k}: .*$`, 'm'), `      ${k}: ${v}`)
      : text.replace(/^( {6}BROKEN: .*)$/m, `$1\n      ${k}: ${v}`);
  }
  fs.writeFileSync(file, text);
  fs.writeFileSync(path.join(repo, 'stack', 'VERSION'), label + '\n');
  git(repo, ['add', '-A']);
  git(repo, ['commit', '-q', '-m', label]);
  return releaseIdFor(git(repo, ['rev-parse', 'HEAD']));
}

async function run(label: string, secret: string, o: { configPath?: string; targets?: string[] } = {}) {
  const events: DeployEvent[] = [];
  const t0 = Date.now();
  const report = await deploy({
    configPath: o.configPath ?? path.join(repo, 'homelab-deploy.yml'),
    phase: 'all',
    ref: 'HEAD',
    targets: o.targets,
    env: { ...process.env, SECRET_VALUE: secret },
    redactor: new Redactor(),
    onEvent: (e) => void events.push(e),
  });
  const ms = Date.now() - t0;
  timings.push([`${label} (${report.status})`, ms]);
  const phases = report.phases.map((p) => `${p.name} ${(p.durationMs / 1000).toFixed(1)}s`).join(', ');
  console.log(`${label}: ${report.status} in ${(ms / 1000).toFixed(1)} s [${phases}]`);
  // The secret went through podman-compose, whose output the report keeps: it must be masked everywhere.
  expect(JSON.stringify(report)).not.toContain(secret);
  expect(JSON.stringify(events)).not.toContain(secret);
  return report;
}

/** Fails with what went wrong on which host, not just the status. */
function expectStatus(r: Report, status: Report['status']): void {
  if (r.status !== status) {
    const steps = r.phases.flatMap((p) =>
      p.hosts.flatMap((h) =>
        h.steps.filter((s) => !s.ok).map((s) => ({ phase: p.name, host: h.host, ...s })),
      ),
    );
    throw new Error(
      `expected ${status}, got ${r.status}: ${JSON.stringify({ error: r.error, hosts: r.hosts, steps }, null, 1)}`,
    );
  }
}

/** What a host's container says: the release it serves and whose secret it holds (by its SHA-256). */
async function served(host: string): Promise<{ status: number; release?: string; secret: string }> {
  const health = await sandbox.http(host, 8080, '/health');
  const secret = await sandbox.http(host, 8080, '/secret.sha256');
  let release: string | undefined;
  try {
    release = (JSON.parse(health.body) as { release?: string }).release;
  } catch {
    release = undefined;
  }
  return {
    status: health.status,
    release,
    secret: secret.status === 200 ? whose(secret.body.trim()) : `unreadable (HTTP ${secret.status})`,
  };
}

async function sh(host: string, command: string): Promise<string> {
  const r = await sandbox.exec(host, command);
  if (r.code !== 0) throw new Error(`${host}: ${command}: exit ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

/** Whose SECRET_VALUE the host's env file holds, read the way podman-compose reads it (python-dotenv). */
async function envFileSecret(host: string, dir = 'sample'): Promise<string> {
  const py = 'import sys, dotenv; sys.stdout.write(dotenv.dotenv_values(sys.argv[1])["SECRET_VALUE"])';
  const r = await sandbox.exec(host, `python3 -c '${py}' srv/${dir}/shared/.env`);
  return r.code === 0 ? whose(r.stdout) : `unreadable (exit ${r.code}: ${r.stderr.trim().split('\n').pop()})`;
}

async function expectNoLock(host: string, dir = 'sample'): Promise<void> {
  expect(await sh(host, `test -e srv/${dir}/.homelab-deploy/lock && echo held || echo free`)).toBe('free');
}

beforeAll(async () => {
  const t0 = Date.now();
  sandbox = await startNetnsHosts({ names: HOSTS });
  timings.push(['3 namespaced hosts up', Date.now() - t0]);
  const t1 = Date.now();
  // One image per host storage, built on the host itself: no registry, nothing shared between hosts.
  await Promise.all(HOSTS.map((h) => sh(h, `sh ${path.join(STACK, 'image', 'build.sh')} localhost/app:1`)));
  timings.push(['image built on each host', Date.now() - t1]);
  repo = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-e2e-repo-'));
  fs.cpSync(STACK, path.join(repo, 'stack'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'homelab-deploy.yml'), config());
  git(repo, ['init', '-q', '-b', 'main']);
  git(repo, ['add', '-A']);
  git(repo, ['commit', '-q', '-m', 'v1']);
}, 300_000);

afterAll(async () => {
  const t0 = Date.now();
  await sandbox?.stop();
  timings.push(['teardown', Date.now() - t0]);
  if (repo) fs.rmSync(repo, { recursive: true, force: true });
  console.log(`e2e timings:\n${timings.map(([k, ms]) => `  ${k}: ${(ms / 1000).toFixed(1)} s`).join('\n')}`);
}, 120_000);

describe('compose stacks in real containers on three namespaced hosts', () => {
  let v2 = '';

  it('each host has its own podman: one image, no containers, nothing of the others', async () => {
    for (const h of HOSTS) {
      expect(await sh(h, "podman images --format '{{.Repository}}:{{.Tag}}'")).toBe('localhost/app:1');
      expect(await sh(h, 'podman ps -aq')).toBe('');
      expect(await sh(h, "ip -4 -o addr show scope global | awk '{print $4}'")).toBe(
        `${sandbox.host(h).address}/30`,
      );
    }
    // Different pid namespaces: every host sees itself as a handful of processes under its own sshd.
    expect(await sh('thinkpad', 'ps -e -o comm= | sort -u')).not.toMatch(/node|jest/);
  });

  it('v1 then v2 deploy everywhere; each container serves its release and holds the secret byte for byte', async () => {
    const r1 = await run('v1 (first deploy)', S1);
    expectStatus(r1, 'success');
    for (const h of HOSTS) {
      expect(await served(h)).toEqual({ status: 200, release: r1.release.id, secret: 'v1' });
      expect(await sh(h, 'stat -c %a srv/sample/shared/.env')).toBe('600');
    }

    v2 = commit('v2');
    const r2 = await run('v2', S2);
    expectStatus(r2, 'success');
    expect(r2.systemsDeployed).toEqual(HOSTS);
    for (const h of HOSTS) {
      expect(await served(h)).toEqual({ status: 200, release: v2, secret: 'v2' });
      expect(await envFileSecret(h)).toBe('v2');
      // --force-recreate replaced v1's container (podman-compose's plain `up -d` would only restart it), and
      // the compose healthcheck ran: one healthy container per host.
      const ps = await sh(h, "podman ps -a --format '{{.Names}} {{.Status}}'");
      expect(ps).toMatch(/^sample_app_1 Up .*\(healthy\)$/);
      expect(
        await sh(
          h,
          "podman inspect -f '{{range .Config.Env}}{{println .}}{{end}}' sample_app_1 | grep ^RELEASE=",
        ),
      ).toBe(`RELEASE=${v2}`);
      expect(await sh(h, 'readlink srv/sample/current')).toBe(`releases/${v2}`);
      await expectNoLock(h);
    }
  }, 300_000);

  it('a broken v3 fails its health checks on staging: staging rolled back, every host serves v2 with v2’s secret', async () => {
    expect(v2).not.toBe('');
    const v3 = commit('v3', { BROKEN: 'http' });
    const r3 = await run('v3 broken everywhere', S3);
    expectStatus(r3, 'failed');
    expect(r3.phase).toBe('staging');
    expect(r3.error?.class).toBe('health-failed');
    expect(r3.error?.message).toMatch(/expected status 200, got 404/);
    expect(r3.hosts.find((h) => h.host === 'thinkpad')).toMatchObject({
      before: v2,
      after: v2,
      state: 'previous',
      rollback: { ok: true, to: v2 },
    });
    expect(r3.systemsDeployed).toEqual([]);
    for (const h of HOSTS) {
      // The rollback recreated staging's container from v2 with the restored env file; the other hosts never
      // left v2.
      expect(await served(h)).toEqual({ status: 200, release: v2, secret: 'v2' });
      expect(await sh(h, 'readlink srv/sample/current')).toBe(`releases/${v2}`);
      expect(await sh(h, "podman ps -a --format '{{.Names}} {{.Status}}'")).toMatch(
        /^sample_app_1 Up [^\n]*$/,
      );
      await expectNoLock(h);
    }
    expect(await sh('thinkpad', 'ls srv/sample/releases')).toContain(v3);
  }, 300_000);

  it('after the failed v3, every host’s env file on disk is v2’s again, not only where v3 ran', async () => {
    expect(v2).not.toBe('');
    // The secrets phase wrote v3's env file to every host before staging failed. Where it stays, the next
    // restart of v2 (a reboot, a manual `up`, a later rollback to v2) runs v2 with v3's secret.
    const onDisk: Record<string, string> = {};
    for (const h of HOSTS) onDisk[h] = await envFileSecret(h);
    expect(onDisk).toEqual({ thinkpad: 'v2', rtx1080: 'v2', vps: 'v2' });
  });

  it('a v4 that breaks only on the VPS: 3 attempts there, VPS rolled back to v2, partial success', async () => {
    expect(v2).not.toBe('');
    const v4 = commit('v4', { BROKEN: 'exit', BROKEN_STAGE: 'public' });
    const r4 = await run('v4 broken on the VPS', S4);
    expectStatus(r4, 'partial_success');
    expect(r4.systemsDeployed).toEqual(['thinkpad', 'rtx1080']);
    const vps = r4.phases.find((p) => p.name === 'public')?.hosts[0];
    expect(vps?.attempts.map((a) => a.ok)).toEqual([false, false, false]);
    expect(vps?.attempts[1].delayBeforeMs).toBeGreaterThanOrEqual(500);
    // The container exited at once: the HTTP check finds nothing listening, the compose check sees why.
    expect(JSON.stringify(vps?.health)).toMatch(/app: exited/);
    expect(r4.hosts.find((h) => h.host === 'vps')).toMatchObject({
      after: v2,
      rollback: { ok: true, to: v2 },
    });
    expect(r4.phases.find((p) => p.name === 'verify')?.status).toBe('ok');
    for (const h of ['thinkpad', 'rtx1080']) {
      expect(await served(h)).toEqual({ status: 200, release: v4, secret: 'v4' });
      expect(await envFileSecret(h)).toBe('v4');
    }
    // The VPS runs v2 again, with the env file saved before this run: v2's secret only if the failed v3 left
    // v2's env file there (previous test).
    expect(await served('vps')).toEqual({ status: 200, release: v2, secret: 'v2' });
    expect(await envFileSecret('vps')).toBe('v2');
    expect(await sh('vps', 'readlink srv/sample/current')).toBe(`releases/${v2}`);
    for (const h of HOSTS) await expectNoLock(h);
  }, 300_000);

  it('a broken first deploy is rolled back by stopping the stack: nothing left running', async () => {
    // Its own project and path on staging; the sample stack there makes room for it on port 8080.
    await sh(
      'thinkpad',
      'cd srv/sample/current && podman-compose -p sample -f compose.yaml down >/dev/null 2>&1',
    );
    const configPath = path.join(repo, 'fresh.yml');
    fs.writeFileSync(configPath, config({ project: 'fresh', dir: 'fresh' }));
    commit('fresh', { BROKEN: 'http' });
    const r = await run('broken first deploy', S1, { configPath, targets: ['thinkpad'] });
    expectStatus(r, 'failed');
    expect(r.hosts.find((h) => h.host === 'thinkpad')).toMatchObject({
      before: null,
      after: null,
      rollback: { ok: true, to: null },
    });
    expect(
      await sh(
        'thinkpad',
        "podman ps -a --filter label=io.podman.compose.project=fresh --format '{{.Names}}'",
      ),
    ).toBe('');
    expect((await sandbox.http('thinkpad', 8080, '/health')).status).toBe(0);
    await expectNoLock('thinkpad', 'fresh');
  }, 300_000);
});
