import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deploy } from '../../src/engine';
import type { Report } from '../../src/report/types';
import { Redactor } from '../../src/secrets/redact';
import { git, useHomelab } from '../fixtures/pipeline';
import { startVercelStandin, type VercelStandin } from '../helpers/vercel-standin';

/**
 * The failure rules of the default pipeline (staging → production → public with retries) hold when the targets
 * are Vercel projects and runner platforms instead of SSH hosts: the whole engine runs through deploy(), and
 * every assertion about what is live is read from the stand-in or the platform, not from the report.
 */

const TOKEN = 'vcp_pipeline_4Gk8Wq2Ls9Xv';
const TEAM = { id: 'team_pipe01', slug: 'pipe' };
const SITES = ['shop-staging', 'shop-prod', 'shop-public'] as const;
const STAGE = { 'shop-staging': 'staging', 'shop-prod': 'production', 'shop-public': 'public' } as const;

let standin: VercelStandin;
let dir: string;

beforeEach(async () => {
  standin = await startVercelStandin({ token: TOKEN, team: TEAM, queueMs: 5, buildMs: 20 });
  for (const s of SITES) standin.addProject({ name: s, domains: [`${s}.example.com`] });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-targets-pipeline-'));
});

afterEach(async () => {
  await standin.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A repo whose commit the run deploys, and a config of three Vercel sites in the default pipeline. */
function vercelProject(): { configPath: string; sha: string } {
  const configPath = path.join(dir, 'homelab-deploy.yml');
  fs.writeFileSync(
    configPath,
    `version: 1
project: sites
defaults:
  vercel:
    team: ${TEAM.id}
    api: ${standin.apiUrl}
    repo: example/sites
    poll_interval: 20ms
    state: { path: ${path.join(dir, 'state')} }
targets:
${SITES.map((s) => `  ${s}: { kind: vercel, project: ${s}, stage: ${STAGE[s]}, domains: [${s}.example.com] }`).join('\n')}
health:
  - name: health
    http: "{{target.url}}/health"
    ca_file: ${standin.caFile}
    expect: { status: 200, release: "json:release" }
    interval: 50ms
    retries: 1
    timeout: 3s
`,
  );
  git(dir, ['init', '-q', '-b', 'main']);
  git(dir, ['add', '-A']);
  git(dir, ['commit', '-q', '-m', 'sites']);
  return { configPath, sha: git(dir, ['rev-parse', 'HEAD']) };
}

const run = (configPath: string, extra: Partial<Parameters<typeof deploy>[0]> = {}): Promise<Report> =>
  deploy({
    configPath,
    phase: 'all',
    ref: 'HEAD',
    env: { ...process.env, VERCEL_TOKEN: TOKEN },
    redactor: new Redactor(),
    ...extra,
  });

describe('the pipeline with Vercel targets in every stage', () => {
  it('a clean deploy makes every site production on its new deployment', async () => {
    const { configPath } = vercelProject();
    const before = Object.fromEntries(SITES.map((s) => [s, standin.project(s).production]));
    const r = await run(configPath);
    expect(r.status).toBe('success');
    for (const s of SITES) {
      const now = standin.project(s).production;
      expect(now).not.toBe(before[s]);
      expect(await standin.servedBy(`${s}.example.com`)).toMatchObject({ status: 200, deployment: now });
    }
    expect(r.hosts.map((h) => [h.host, h.kind, h.state])).toEqual(SITES.map((s) => [s, 'vercel', 'new']));
    expect(JSON.stringify(r)).not.toContain(TOKEN);
  });

  it('a production build that fails rolls staging back (instant rollback) and leaves production serving: rolled_back', async () => {
    const { configPath } = vercelProject();
    const before = Object.fromEntries(SITES.map((s) => [s, standin.project(s).production]));
    standin.planBuilds((d) => d.projectId === standin.project('shop-prod').id, {
      outcome: 'ERROR',
      errorCode: 'BUILD_FAILED',
      errorMessage: 'npm run build exited 1',
    });
    const r = await run(configPath);
    expect(r.status).toBe('rolled_back');
    expect(r.error?.phase).toBe('production');
    // Read from the stand-in: every project serves what it served before.
    for (const s of SITES) expect(standin.project(s).production).toBe(before[s]);
    expect(standin.calls('POST', /\/v1\/projects\/[^/]+\/rollback\//).length).toBe(1);
    expect(r.hosts.find((h) => h.host === 'shop-staging')?.rollback).toMatchObject({
      ok: true,
      to: before['shop-staging'],
    });
  });

  it('a public site failing its checks is retried, then rolled back alone: partial_success, production stays live', async () => {
    const { configPath } = vercelProject();
    const before = standin.project('shop-public').production;
    const prodBefore = standin.project('shop-prod').production;
    standin.health = (d, p) =>
      d.projectId === standin.project('shop-public').id && d.id !== before && p === '/health' ? 503 : 200;
    const configText = fs.readFileSync(configPath, 'utf8').replace(
      'health:\n',
      `stages:
  - { name: staging, hosts: [shop-staging] }
  - { name: production, hosts: [shop-prod] }
  - { name: public, hosts: [shop-public], retry: { attempts: 3, delay: 50ms, factor: 2 }, on_failure: rollback-stage }
health:\n`,
    );
    fs.writeFileSync(
      configPath,
      configText.replace(
        / {2}shop-(\w+): \{ kind: vercel, project: (\S+), stage: \w+,/g,
        '  shop-$1: { kind: vercel, project: $2,',
      ),
    );
    git(dir, ['commit', '-qam', 'stages']);
    const r = await run(configPath);
    expect(r.status).toBe('partial_success');
    expect(standin.project('shop-public').production).toBe(before);
    expect(standin.project('shop-prod').production).not.toBe(prodBefore);
    const pub = r.phases.find((p) => p.name === 'public')?.hosts[0];
    expect(pub?.attempts.length).toBe(3);
    expect(r.systemsDeployed.sort()).toEqual(['shop-prod', 'shop-staging']);
  });
});

/** A fake platform on the runner: a version file, `up` writes the release into it, `rollback` puts HD_PREVIOUS back. */
function runnerPlatform(): { configPath: string; live: (t: string) => string } {
  const state = path.join(dir, 'platform');
  fs.mkdirSync(state, { recursive: true });
  const script = path.join(dir, 'platform.sh');
  fs.writeFileSync(
    script,
    `#!/bin/sh
set -eu
f="${state}/$HD_TARGET"
case "$1" in
  current) [ -f "$f" ] && cat "$f" || true ;;
  up) [ -f "${state}/FAIL-$HD_TARGET" ] && { echo "deploy of $HD_TARGET failed" >&2; exit 7; }; echo "rev-$HD_RELEASE" > "$f" ;;
  rollback) if [ -n "$HD_PREVIOUS" ]; then echo "$HD_PREVIOUS" > "$f"; else rm -f "$f"; fi ;;
esac
`,
    { mode: 0o755 },
  );
  const configPath = path.join(dir, 'homelab-deploy.yml');
  fs.writeFileSync(
    configPath,
    `version: 1
project: platform
defaults:
  runner: { state: { path: ${path.join(dir, 'state')} }, timeout: 30s }
targets:
  api-staging: { kind: runner, stage: staging, current: ${script} current, up: ${script} up, rollback: ${script} rollback, down: ${script} rollback }
  api-prod: { kind: runner, stage: production, current: ${script} current, up: ${script} up, rollback: ${script} rollback, down: ${script} rollback }
health:
  - { name: live, command: "test \\"$(cat ${state}/$HD_TARGET)\\" = rev-$HD_RELEASE", retries: 0, interval: 50ms }
`,
  );
  git(dir, ['init', '-q', '-b', 'main']);
  git(dir, ['add', '-A']);
  git(dir, ['commit', '-q', '-m', 'platform']);
  return { configPath, live: (t) => fs.readFileSync(path.join(state, t), 'utf8').trim() };
}

describe('the pipeline with runner targets', () => {
  it('deploys staging then production; a failing production rolls both back to what the platform ran', async () => {
    const { configPath, live } = runnerPlatform();
    const first = await run(configPath);
    expect(first.status).toBe('success');
    const v1 = live('api-prod');
    expect(v1).toBe(`rev-${first.release.id}`);
    fs.writeFileSync(path.join(dir, 'CHANGE'), 'v2\n');
    git(dir, ['add', '-A']);
    git(dir, ['commit', '-qm', 'v2']);
    fs.writeFileSync(path.join(dir, 'platform', 'FAIL-api-prod'), '');
    const second = await run(configPath);
    expect(second.status).toBe('rolled_back');
    expect(live('api-staging')).toBe(v1);
    expect(live('api-prod')).toBe(v1);
    expect(second.hosts.map((h) => [h.host, h.kind, h.before, h.after, h.state])).toEqual([
      ['api-staging', 'runner', v1, v1, 'previous'],
      ['api-prod', 'runner', v1, v1, 'previous'],
    ]);
  });
});

describe('one stage holding an SSH host, a runner platform and a Vercel project', () => {
  const lab = useHomelab();

  it('deploys all three kinds in one stage; a failure of one rolls the stage back on all three', async () => {
    const platform = path.join(dir, 'platform');
    fs.mkdirSync(platform, { recursive: true });
    const script = path.join(dir, 'platform.sh');
    fs.writeFileSync(
      script,
      `#!/bin/sh\nset -eu\nf="${platform}/live"\ncase "$1" in\n  current) [ -f "$f" ] && cat "$f" || true ;;\n  up) [ -f "${platform}/FAIL" ] && exit 3; echo "rev-$HD_RELEASE" > "$f" ;;\n  rollback) echo "$HD_PREVIOUS" > "$f" ;;\nesac\n`,
      { mode: 0o755 },
    );
    const p = await lab.project({
      config: (c) =>
        c
          .replace(
            'secrets:\n',
            `targets:
  api: { kind: runner, current: ${script} current, up: ${script} up, rollback: ${script} rollback, down: ${script} rollback, state: { path: ${path.join(dir, 'state')} } }
  shop-prod: { kind: vercel, project: shop-prod, team: ${TEAM.id}, api: ${standin.apiUrl}, repo: example/sites, poll_interval: 20ms, domains: [shop-prod.example.com], state: { path: ${path.join(dir, 'state')} } }
secrets:\n`,
          )
          .replace(
            /health:\n( {2}- .*\n| {4}.*\n)+/,
            'health:\n  - { name: answers, command: "true", retries: 0 }\n',
          )
          .replace('hosts: [rtx1080]', 'hosts: [rtx1080, api, shop-prod]'),
    });
    const env = { ...process.env, VERCEL_TOKEN: TOKEN, HD_TEST_SECRET: 'mixed-secret' };
    const first = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env,
      redactor: new Redactor(),
    });
    expect(first.status).toBe('success');
    const v1 = first.release.id;
    expect(p.current('rtx1080')).toBe(v1);
    expect(fs.readFileSync(path.join(platform, 'live'), 'utf8').trim()).toBe(`rev-${v1}`);
    const shopV1 = standin.project('shop-prod').production;
    expect(standin.deployment(shopV1 as string).meta.hdRelease).toBe(v1);
    expect(first.hosts.filter((h) => h.stage === 'production').map((h) => [h.host, h.kind])).toEqual([
      ['rtx1080', 'ssh'],
      ['api', 'runner'],
      ['shop-prod', 'vercel'],
    ]);

    p.commit('v2');
    fs.writeFileSync(path.join(platform, 'FAIL'), '');
    const second = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env,
      redactor: new Redactor(),
    });
    expect(second.status).toBe('rolled_back');
    // What each kind runs, read from the host, the platform and the stand-in.
    expect(p.current('thinkpad')).toBe(v1);
    expect(p.current('rtx1080')).toBe(v1);
    expect(fs.readFileSync(path.join(platform, 'live'), 'utf8').trim()).toBe(`rev-${v1}`);
    expect(standin.project('shop-prod').production).toBe(shopV1);
  });
});
