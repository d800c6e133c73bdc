import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { releaseIdFor } from '../../src/run/release';
import type { Report } from '../../src/report/types';
import { runAction, type ActionRun } from '../helpers/action-runner';
import { git, makeProject, type Project } from '../fixtures/pipeline';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';

const SECRET = 'action-s3cret-value';
let sandbox: SshSandbox;
const projects: Project[] = [];
let api: http.Server;
let apiUrl: string;
type Call = { method: string; path: string; body: Record<string, unknown>; auth?: string };
const calls: Call[] = [];
/**
 * flaky: the first `pending` of every context is slow and answered 502, as GitHub sometimes does; its retry
 * must still land before that context's final state.
 */
let apiMode: 'ok' | 'flaky' = 'ok';
const seenPending = new Set<string>();

/**
 * GitHub's git database endpoints as docs.github.com documents them, for release tags: a tag object, then its ref
 * (422 when taken), refs read back (404 when absent). Everything else is answered by the statuses stand-in below.
 */
const gitRefs = new Map<string, { type: 'tag' | 'commit'; sha: string }>();
const gitTags = new Map<string, { tag: string; message: string; object: { type: string; sha: string } }>();
function gitApi(c: Call): { status: number; body: unknown } | undefined {
  let m: RegExpExecArray | null;
  if (c.method === 'POST' && c.path === '/repos/jjeco/homelab/git/tags') {
    const sha = createHash('sha1').update(JSON.stringify(c.body)).digest('hex');
    const tag = {
      tag: String(c.body.tag),
      message: String(c.body.message),
      object: { type: String(c.body.type), sha: String(c.body.object) },
    };
    gitTags.set(sha, tag);
    return { status: 201, body: { sha, ...tag } };
  }
  if (c.method === 'POST' && c.path === '/repos/jjeco/homelab/git/refs') {
    const ref = String(c.body.ref);
    if (gitRefs.has(ref)) return { status: 422, body: { message: 'Reference already exists' } };
    const object = {
      type: gitTags.has(String(c.body.sha)) ? ('tag' as const) : ('commit' as const),
      sha: String(c.body.sha),
    };
    gitRefs.set(ref, object);
    return { status: 201, body: { ref, object } };
  }
  if (c.method === 'GET' && (m = /^\/repos\/jjeco\/homelab\/git\/ref\/(.+)$/.exec(c.path))) {
    const object = gitRefs.get(`refs/${decodeURIComponent(m[1])}`);
    return object ? { status: 200, body: { object } } : { status: 404, body: { message: 'Not Found' } };
  }
  if (c.method === 'GET' && (m = /^\/repos\/jjeco\/homelab\/git\/tags\/([0-9a-f]+)$/.exec(c.path))) {
    const tag = gitTags.get(m[1]);
    return tag
      ? { status: 200, body: { sha: m[1], ...tag } }
      : { status: 404, body: { message: 'Not Found' } };
  }
  return undefined;
}

beforeAll(async () => {
  sandbox = await startSshSandbox({ names: ['thinkpad', 'rtx1080', 'vps'] });
  api = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const call = {
        method: req.method ?? '',
        path: req.url ?? '',
        body: body ? JSON.parse(body) : {},
        auth: req.headers.authorization,
      };
      calls.push(call);
      const git = gitApi(call);
      if (git) {
        res.writeHead(git.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(git.body));
        return;
      }
      const key = `${call.body.context}`;
      if (apiMode === 'flaky' && call.body.state === 'pending' && !seenPending.has(key)) {
        seenPending.add(key);
        setTimeout(() => {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end('{"message":"bad gateway"}');
        }, 300);
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 31 }));
    });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
}, 60_000);
afterAll(async () => {
  for (const p of projects) p.stopServices();
  api?.close();
  api?.closeAllConnections();
  await sandbox?.stop();
});
beforeEach(() => {
  calls.length = 0;
  apiMode = 'ok';
  seenPending.clear();
});

function github(p: Project) {
  return {
    GITHUB_WORKSPACE: p.repo,
    GITHUB_REPOSITORY: 'jjeco/homelab',
    GITHUB_RUN_ID: '4242',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_ACTOR: 'octocat',
    GITHUB_API_URL: apiUrl,
    HD_TEST_SECRET: SECRET,
  };
}

async function project(extra?: Parameters<typeof makeProject>[1]): Promise<Project> {
  const p = await makeProject(sandbox, extra);
  projects.push(p);
  return p;
}

/** The states each commit-status context received, in the order the API received them. */
function statusesPerContext(sha: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const c of calls.filter((x) => x.path === `/repos/jjeco/homelab/statuses/${sha}`))
    (out[String(c.body.context)] ??= []).push(String(c.body.state));
  return out;
}

const reportOf = (run: ActionRun) => JSON.parse(run.outputs.report) as Report;

function foreignLock(p: Project, host: string) {
  fs.mkdirSync(path.join(p.paths[host], '.homelab-deploy', 'lock'), { recursive: true });
  fs.writeFileSync(
    path.join(p.paths[host], '.homelab-deploy', 'lock', 'owner.json'),
    JSON.stringify({
      token: 'someoneelse1',
      commit: '0'.repeat(40),
      phase: 'production',
      startedAt: new Date().toISOString(),
      heartbeat: new Date().toISOString(),
      runId: '999-1',
      actor: 'someone',
    }) + '\n',
  );
}

describe('the bundled action (node dist/index.js)', () => {
  it('deploys all phases, sets every output, writes the job summary and ordered commit statuses', async () => {
    const p = await project();
    const sha = git(p.repo, ['rev-parse', 'HEAD']);
    apiMode = 'flaky';
    const run = await runAction(
      {
        config: 'homelab-deploy.yml',
        phase: 'all',
        ref: 'main',
        'github-token': 'ghs_testtoken123',
        statuses: 'true',
        environment: 'production',
      },
      github(p),
    );
    expect(run.code).toBe(0);
    expect(run.outputs.status).toBe('success');
    expect(run.outputs.phase).toBe('verify');
    expect(run.outputs.commit).toBe(sha);
    expect(JSON.parse(run.outputs['systems-deployed'])).toEqual(['thinkpad', 'rtx1080', 'vps']);
    expect(Number(run.outputs['duration-seconds'])).toBeGreaterThan(0);
    expect(run.outputs).toMatchObject({
      'needs-attention': '[]',
      escalated: 'false',
      'release-status': '',
      'release-tag': '',
    });
    const report = reportOf(run);
    expect(report.release.commit).toBe(sha);
    expect(report.run).toMatchObject({
      actor: 'octocat',
      url: 'https://github.com/jjeco/homelab/actions/runs/4242',
    });
    expect(JSON.parse(fs.readFileSync(run.outputs['report-file'], 'utf8')).status).toBe('success');
    expect(run.summary).toContain('## ✅ Deploy succeeded');
    expect(run.summary).toContain('```mermaid');
    for (const h of ['thinkpad', 'rtx1080', 'vps'])
      expect(run.summary).toMatch(new RegExp(`\\| ${h} \\| \\w+ \\| — → ${report.release.id} \\|`));
    expect(run.stdout).toContain('::group::staging [thinkpad]');
    // The runner swallows ::add-mask:: commands; everything else must be free of the secret.
    const visible = run.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n');
    expect(visible + run.summary + JSON.stringify(run.outputs)).not.toContain(SECRET);
    expect(run.stdout).toContain(`::add-mask::${SECRET}`);
    expect(run.state.runToken).toMatch(/^[0-9a-f]{12}$/);
    // Every phase: a pending (the first one answered 502, so sent twice) and then success, never out of order;
    // the result last. Nothing is left open for the post step.
    const twice = ['pending', 'pending', 'success'];
    expect(statusesPerContext(sha)).toEqual({
      'homelab-deploy/production/preflight': twice,
      'homelab-deploy/production/secrets': twice,
      'homelab-deploy/production/snapshot': twice,
      'homelab-deploy/production/staging': twice,
      'homelab-deploy/production/production': twice,
      'homelab-deploy/production/public': twice,
      'homelab-deploy/production/verify': twice,
      'homelab-deploy/production/result': ['success'],
    });
    expect(calls[calls.length - 1].body.context).toBe('homelab-deploy/production/result');
    expect(
      calls.every(
        (c) =>
          /^(Bearer|token) ghs_testtoken123$/.test(c.auth ?? '') &&
          c.body.target_url === 'https://github.com/jjeco/homelab/actions/runs/4242',
      ),
    ).toBe(true);
    expect(calls.every((c) => String(c.body.description).length <= 140)).toBe(true);
    expect(JSON.parse(run.state.openStatuses).contexts).toEqual([]);
    expect(run.state.finished).toBe('true');
  });

  it('fails the job for failed (staging unhealthy), with the exact statuses and what happened', async () => {
    const p = await project();
    const sha = git(p.repo, ['rev-parse', 'HEAD']);
    fs.mkdirSync(p.paths.thinkpad, { recursive: true });
    p.fault('thinkpad', releaseIdFor(sha));
    const run = await runAction(
      { config: 'homelab-deploy.yml', 'github-token': 'ghs_x', environment: 'staging' },
      github(p),
    );
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.outputs.phase).toBe('staging');
    expect(run.outputs.commit).toBe(sha);
    expect(run.stdout).toMatch(/::error::homelab-deploy failed in staging: \[health-failed\]/);
    expect(run.summary).toContain('## ❌ Deploy failed');
    expect(statusesPerContext(sha)).toEqual({
      'homelab-deploy/staging/preflight': ['pending', 'success'],
      'homelab-deploy/staging/secrets': ['pending', 'success'],
      'homelab-deploy/staging/snapshot': ['pending', 'success'],
      'homelab-deploy/staging/staging': ['pending', 'failure'],
      'homelab-deploy/staging/result': ['failure'],
    });
    expect(p.current('rtx1080')).toBeNull();
  });

  it('fails the job for rolled_back, with outputs and a summary that say what happened', async () => {
    const p = await project();
    expect((await runAction({ config: 'homelab-deploy.yml', statuses: 'false' }, github(p))).code).toBe(0);
    const v2 = releaseIdFor(p.commit('v2'));
    p.fault('rtx1080', v2);
    const run = await runAction({ config: 'homelab-deploy.yml', statuses: 'false', ref: 'HEAD' }, github(p));
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('rolled_back');
    expect(run.outputs.phase).toBe('production');
    expect(run.stdout).toMatch(/::error::homelab-deploy rolled_back in production: \[health-failed\]/);
    expect(run.summary).toContain('## ↩️ Deploy rolled back');
    expect(run.summary).toContain('↩️ rolled back');
    expect(p.current('rtx1080')).not.toBe(v2);
    expect(calls).toEqual([]);
  });

  it("fails the job for aborted (a lock held by another run); an empty lock-wait means the config's lock.wait", async () => {
    const p = await project({ config: (c) => c + 'lock: { wait: 1s }\n' });
    foreignLock(p, 'rtx1080');
    const waited = await runAction({ config: 'homelab-deploy.yml', statuses: 'off' }, github(p));
    expect(waited.code).toBe(1);
    expect(waited.outputs.status).toBe('aborted');
    expect(waited.outputs.phase).toBe('preflight');
    expect(waited.stdout).toMatch(/::error::homelab-deploy aborted in preflight: \[lock-held\]/);
    expect(waited.stdout).toMatch(/waiting \(up to \d+s more\)/);
    expect(waited.summary).toContain('## ⛔ Deploy aborted, nothing changed');
    for (const h of ['thinkpad', 'rtx1080', 'vps']) expect(p.current(h)).toBeNull();
    // An explicit 0 overrides the config: no wait.
    const atOnce = await runAction(
      { config: 'homelab-deploy.yml', statuses: 'off', 'lock-wait': '0' },
      github(p),
    );
    expect(atOnce.outputs.status).toBe('aborted');
    expect(atOnce.stdout).not.toMatch(/waiting \(up to/);
  });

  it('runs the pipeline as deploy.yml does: later jobs deploy the commit output, not the moved branch', async () => {
    const p = await project();
    const tested = git(p.repo, ['rev-parse', 'HEAD']);
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-jobs-'));
    const job = (phase: string, ref: string, name: string, environment = '') =>
      runAction(
        {
          config: 'homelab-deploy.yml',
          phase,
          ref,
          environment,
          'github-token': 'ghs_x',
          'report-file': path.join(outDir, `${name}.json`),
        },
        github(p),
      );
    const staging = await job('preflight,secrets,snapshot,staging', 'main', 'staging', 'staging');
    expect(staging.outputs).toMatchObject({ status: 'success', commit: tested });
    // The branch moves while production waits for its approval.
    const newer = p.commit('v2-untested');
    const production = await job(
      'secrets,snapshot,production',
      staging.outputs.commit,
      'production',
      'production',
    );
    const pub = await job('secrets,snapshot,public', staging.outputs.commit, 'public', 'public');
    const verify = await job('verify', staging.outputs.commit, 'verify');
    for (const r of [production, pub, verify])
      expect(r.outputs).toMatchObject({ status: 'success', commit: tested });
    expect(p.current('rtx1080')).toBe(releaseIdFor(tested));
    expect(p.current('rtx1080')).not.toBe(releaseIdFor(newer));

    calls.length = 0;
    const merged = await runAction(
      {
        'merge-reports': `${outDir}/*.json`,
        'merge-mode': 'pipeline',
        'merge-status': 'success',
        statuses: 'off',
        'report-file': path.join(outDir, 'merged', 'report.json'),
      },
      github(p),
    );
    expect(merged.code).toBe(0);
    expect(merged.outputs).toMatchObject({ status: 'success', commit: tested });
    const report = reportOf(merged);
    expect(report.phases.map((x) => x.name)).toEqual([
      ...['preflight', 'secrets', 'snapshot', 'staging'],
      ...['preflight', 'secrets', 'snapshot', 'production'],
      ...['preflight', 'secrets', 'snapshot', 'public'],
      ...['preflight', 'verify'],
    ]);
    expect(report.hosts.map((h) => `${h.host}:${h.before}→${h.after}:${h.state}`)).toEqual(
      ['thinkpad', 'rtx1080', 'vps'].map((h) => `${h}:null→${releaseIdFor(tested)}:new`),
    );
    expect(JSON.parse(merged.outputs['systems-deployed'])).toEqual(['thinkpad', 'rtx1080', 'vps']);
    expect(merged.summary).toContain('## ✅ Deploy succeeded');
    expect(calls).toEqual([]);
    expect(merged.state.runToken).toBeUndefined();
  });

  it('merges shards against the plan: a shard without a report makes its hosts unknown', async () => {
    const p = await project();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-shards-'));
    fs.mkdirSync(path.join(dir, 'reports'));
    const shard = await runAction(
      {
        config: 'homelab-deploy.yml',
        phase: 'preflight,staging',
        targets: 'thinkpad',
        statuses: 'off',
        'report-file': path.join(dir, 'reports', 'homelab-deploy-report-1.json'),
      },
      github(p),
    );
    expect(shard.outputs.status).toBe('success');
    fs.writeFileSync(
      path.join(dir, 'matrix.json'),
      JSON.stringify({
        include: [
          { shard: 1, targets: 'thinkpad', hosts: 1 },
          { shard: 2, targets: 'rtx1080,vps', hosts: 2 },
        ],
      }),
    );
    const inputs = {
      'merge-reports': 'reports/*.json',
      'merge-matrix': 'matrix.json',
      statuses: 'off',
    };
    const merged = await runAction(inputs, { ...github(p), GITHUB_WORKSPACE: dir });
    expect(merged.code).toBe(0);
    expect(merged.outputs.status).toBe('partial_success');
    expect(reportOf(merged).hosts.map((h) => `${h.host}:${h.state}`)).toEqual([
      'thinkpad:new',
      'rtx1080:unknown',
      'vps:unknown',
    ]);
    expect(merged.stdout).toContain('1 of 2 shards did not succeed; 1 produced no report (shard 2;');
    fs.rmSync(path.join(dir, 'reports'), { recursive: true });
    const none = await runAction(inputs, { ...github(p), GITHUB_WORKSPACE: dir });
    expect(none.code).toBe(1);
    expect(none.outputs.status).toBe('failed');
  });

  it('deployments mode: one deployment with in_progress and the final status, through GITHUB_API_URL', async () => {
    const p = await project();
    const run = await runAction(
      {
        config: 'homelab-deploy.yml',
        phase: 'preflight,staging',
        'github-token': 'ghs_dep',
        statuses: 'deployments',
        environment: 'lab',
        'environment-url': 'https://lab.example.com',
      },
      github(p),
    );
    expect(run.outputs.status).toBe('success');
    expect(calls.map((c) => `${c.method} ${c.path} ${c.body.state ?? ''}`)).toEqual([
      'POST /repos/jjeco/homelab/deployments ',
      'POST /repos/jjeco/homelab/deployments/31/statuses in_progress',
      'POST /repos/jjeco/homelab/deployments/31/statuses success',
    ]);
    expect(calls[0].body).toMatchObject({
      ref: run.outputs.commit,
      environment: 'lab',
      production_environment: false,
    });
    expect(calls[2].body).toMatchObject({
      environment_url: 'https://lab.example.com',
      log_url: 'https://github.com/jjeco/homelab/actions/runs/4242',
    });
  });

  it('a deploy whose status calls all fail still reports its true result', async () => {
    const broken = http.createServer((_req, res) => {
      res.writeHead(502);
      res.end('bad gateway');
    });
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
    const p = await project();
    const run = await runAction(
      { config: 'homelab-deploy.yml', 'github-token': 'ghs_x', statuses: 'true' },
      { ...github(p), GITHUB_API_URL: `http://127.0.0.1:${(broken.address() as AddressInfo).port}` },
    );
    broken.close();
    broken.closeAllConnections();
    expect(run.code).toBe(0);
    expect(run.outputs.status).toBe('success');
    expect(run.stdout.match(/::warning::GitHub status update failed after retries/g)).toHaveLength(1);
  });

  it('confirm: a run above checkpoint.above is aborted untouched without it, and deploys with it', async () => {
    const p = await project({ config: (c) => c.replace('hosts:\n', 'checkpoint: { above: 2 }\nhosts:\n') });
    const refused = await runAction({ config: 'homelab-deploy.yml', statuses: 'off' }, github(p));
    expect(refused.code).toBe(1);
    expect(refused.outputs.status).toBe('aborted');
    expect(refused.stdout).toContain(
      "this run would deploy to 3 targets, more than checkpoint.above (2): confirm it (homelab-deploy run --yes, or the action's confirm input in the job behind the approval); nothing was touched",
    );
    for (const h of ['thinkpad', 'rtx1080', 'vps']) expect(p.current(h)).toBeNull();
    const confirmed = await runAction(
      { config: 'homelab-deploy.yml', statuses: 'off', confirm: 'true' },
      github(p),
    );
    expect(confirmed.outputs.status).toBe('success');
    for (const h of ['thinkpad', 'rtx1080', 'vps']) expect(p.current(h)).not.toBeNull();
  });

  it('rollback-on-failure: false leaves the failed release in place and lists it; a label selector picks the targets', async () => {
    const p = await project({
      config: (c) => c.replace(/(rtx1080:\n {4}address: \S+)/, '$1\n    labels: { tier: gpu }'),
    });
    const sha = git(p.repo, ['rev-parse', 'HEAD']);
    fs.mkdirSync(p.paths.rtx1080, { recursive: true });
    p.fault('rtx1080', releaseIdFor(sha));
    const run = await runAction(
      {
        config: 'homelab-deploy.yml',
        statuses: 'off',
        phase: 'production',
        targets: 'tier=gpu',
        'rollback-on-failure': 'false',
      },
      github(p),
    );
    expect(run.code).toBe(1);
    const report = reportOf(run);
    expect(report.hosts.map((h) => h.host)).toEqual(['rtx1080']);
    expect(report.notRolledBack).toEqual(['rtx1080']);
    // Left on the failed release, as asked; the other hosts were never touched.
    expect(p.current('rtx1080')).toBe(releaseIdFor(sha));
    expect(p.current('thinkpad')).toBeNull();
  });

  it('a failed rollback: needs-attention names the host, with an error annotation', async () => {
    const p = await project();
    expect((await runAction({ config: 'homelab-deploy.yml', statuses: 'off' }, github(p))).code).toBe(0);
    const v1 = p.current('rtx1080') as string;
    const v2 = releaseIdFor(p.commit('v2'));
    p.fault('rtx1080', v2);
    // Take away v1 once v2 is on the host, before production's health checks give up.
    let deleted = false;
    const watch = setInterval(() => {
      if (!deleted && fs.existsSync(path.join(p.paths.rtx1080, 'releases', v2))) {
        deleted = true;
        fs.rmSync(path.join(p.paths.rtx1080, 'releases', v1), { recursive: true, force: true });
      }
    }, 20);
    const run = await runAction(
      { config: 'homelab-deploy.yml', statuses: 'off', ref: 'HEAD' },
      github(p),
    ).finally(() => clearInterval(watch));
    expect(deleted).toBe(true);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.outputs['needs-attention'])).toEqual(['rtx1080']);
    expect(run.stdout).toContain(
      '::error title=homelab-deploy%3A needs attention::1 target needs a human: rtx1080 (a rollback failed, or the state could not be read back)',
    );
    expect(p.current('rtx1080')).toBe(v2);
  });

  it('release tags go through the GitHub API with the job token: release-status and release-tag', async () => {
    const p = await project({
      config: (c) => `${c}release: { on_stage: production, tag: { version_from: input } }\n`,
    });
    const sha = git(p.repo, ['rev-parse', 'HEAD']);
    const run = await runAction(
      {
        config: 'homelab-deploy.yml',
        statuses: 'off',
        'github-token': 'ghs_tagger',
        'release-version': '1.4.0',
      },
      github(p),
    );
    expect({ outputs: run.outputs, log: run.outputs.status ? '' : run.stdout }).toMatchObject({
      outputs: { status: 'success', 'release-status': 'ok', 'release-tag': 'v1.4.0' },
      log: '',
    });
    const tagCalls = calls.filter((c) => c.path.includes('/git/'));
    expect(tagCalls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'GET /repos/jjeco/homelab/git/ref/tags%2Fv1.4.0',
      'POST /repos/jjeco/homelab/git/tags',
      'POST /repos/jjeco/homelab/git/refs',
    ]);
    expect(tagCalls[1].body).toMatchObject({ tag: 'v1.4.0', object: sha, type: 'commit' });
    expect(gitRefs.get('refs/tags/v1.4.0')?.type).toBe('tag');
    expect(tagCalls.every((c) => c.auth === 'token ghs_tagger' || c.auth === 'Bearer ghs_tagger')).toBe(true);
    expect(reportOf(run).releaseSteps?.tag).toMatchObject({ via: 'github-api', ok: true, created: true });
  });

  it('rejects bad inputs with a message that quotes them', async () => {
    const p = await project();
    const bad = async (inputs: Record<string, string>) =>
      (await runAction({ config: 'homelab-deploy.yml', ...inputs }, github(p))).stdout;
    expect(await bad({ 'lock-wait': 'forever', statuses: 'false' })).toContain(
      `Input "lock-wait" must be a duration such as 0, 30s or 5m (or empty for the config's lock.wait), got "forever".`,
    );
    expect(await bad({ 'dry-run': 'yes' })).toContain(
      'Input "dry-run" must be "true" or "false", got "yes".',
    );
    expect(await bad({ statuses: 'deployment' })).toContain(
      'Input "statuses" must be auto, commit-status, deployments or off (true = auto, false = off). (got "deployment")',
    );
    expect(await bad({ statuses: 'deployments' })).toContain(
      'Input "statuses: deployments" needs "environment": the name the deployment is recorded under. (got "")',
    );
    expect(await bad({ 'merge-reports': 'x.json', 'merge-mode': 'pipeline' })).toContain(
      'Input "merge-mode: pipeline" needs "merge-status"',
    );
    expect(
      await bad({ 'merge-reports': 'x.json', 'merge-mode': 'pipeline', 'merge-status': 'ok' }),
    ).toContain('(got "ok")');
    expect(await bad({ 'environment-url': 'javascript:alert(1)' })).toContain(
      'Input "environment-url" must be an http(s) URL. (got "javascript:alert(1)")',
    );
    expect(await bad({ 'skip-tests': 'yes' })).toContain(
      'Input "skip-tests" must be "false", "true" or "force", got "yes".',
    );
    expect(await bad({ confirm: 'y' })).toContain('Input "confirm" must be "true" or "false", got "y".');
    expect(await bad({ 'rollback-on-failure': 'no' })).toContain(
      'Input "rollback-on-failure" must be "true" or "false", got "no".',
    );
    expect(await bad({ 'release-version': '1..2' })).toContain(
      'Input "release-version": version "1..2" cannot be part of a tag name (no "..", no trailing "." or ".lock").',
    );
    expect(await bad({ targets: 'thinkpad;rm -rf /' })).toContain(
      'Input "targets" must list target names, globs (site-*) or label selectors (region=eu), separated by commas. (got "thinkpad;rm")',
    );
  });

  it('post step releases the locks of a main step that was killed and closes its pending statuses', async () => {
    const p = await project();
    const token = 'feedfacecafe';
    for (const h of ['thinkpad', 'vps']) {
      fs.mkdirSync(path.join(p.paths[h], '.homelab-deploy', 'lock'), { recursive: true });
      fs.writeFileSync(
        path.join(p.paths[h], '.homelab-deploy', 'lock', 'owner.json'),
        JSON.stringify({ token, commit: '0'.repeat(40), phase: 'staging', startedAt: 'x' }) + '\n',
      );
    }
    // Someone else's lock on rtx1080 must survive the cleanup.
    foreignLock(p, 'rtx1080');
    const sha = 'c'.repeat(40);
    const post = await runAction({ config: 'homelab-deploy.yml', 'github-token': 'ghs_post' }, github(p), {
      isPost: 'true',
      runToken: token,
      configPath: p.configPath,
      lockedHosts: JSON.stringify(['thinkpad', 'rtx1080', 'vps']),
      openStatuses: JSON.stringify({
        mode: 'commit-status',
        sha,
        scope: 'staging',
        contexts: ['staging', 'result'],
      }),
    });
    expect(post.code).toBe(0);
    expect(post.stdout).toContain('released the deploy lock on thinkpad');
    expect(fs.existsSync(path.join(p.paths.thinkpad, '.homelab-deploy', 'lock'))).toBe(false);
    expect(fs.existsSync(path.join(p.paths.vps, '.homelab-deploy', 'lock'))).toBe(false);
    expect(fs.existsSync(path.join(p.paths.rtx1080, '.homelab-deploy', 'lock'))).toBe(true);
    expect(statusesPerContext(sha)).toEqual({
      'homelab-deploy/staging/staging': ['error'],
      'homelab-deploy/staging/result': ['error'],
    });
    expect(calls.every((c) => /^(Bearer|token) ghs_post$/.test(c.auth ?? ''))).toBe(true);
    expect(post.stdout).toContain('marked the statuses this run left pending as error: staging, result');
    // The runner swallows ::add-mask:: commands; nothing else may show the token.
    expect(
      post.stdout
        .split('\n')
        .filter((l) => !l.startsWith('::add-mask::'))
        .join('\n'),
    ).not.toContain('ghs_post');
  });

  it('post step after a finished main does nothing', async () => {
    const p = await project();
    const post = await runAction({ config: 'homelab-deploy.yml', 'github-token': 'ghs_post' }, github(p), {
      isPost: 'true',
      finished: 'true',
      runToken: 'feedfacecafe',
      configPath: p.configPath,
      openStatuses: JSON.stringify({
        mode: 'commit-status',
        sha: 'c'.repeat(40),
        scope: 's',
        contexts: ['x'],
      }),
    });
    expect(post.code).toBe(0);
    expect(calls).toEqual([]);
  });
});
