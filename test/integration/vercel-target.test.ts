import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeployError } from '../../src/errors';
import type { RunContext } from '../../src/run/context';
import { DirStateStore } from '../../src/targets/state/dir-store';
import type { Target } from '../../src/targets/target';
import { createVercelTarget, VercelClients, type VercelRunSettings } from '../../src/targets/vercel';
import type { VercelTargetConfig } from '../../src/config/types';
import {
  healthGate,
  releaseCheck,
  startVercelStandin,
  testRun,
  TEST_COMMIT,
  vercelTarget,
  type VercelStandin,
} from '../helpers/vercel-standin';

const TOKEN = 'vcp_test_7Hq2Zr9LmN4xW8yK3pT6';
const TEAM = { id: 'team_4n8Qd2Lx', slug: 'sites-team' };

let standin: VercelStandin;
let tmp: string;

beforeEach(async () => {
  standin = await startVercelStandin({ token: TOKEN, team: TEAM });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-vercel-'));
});

afterEach(async () => {
  await standin.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Rig {
  ctx: RunContext;
  events: ReturnType<typeof testRun>['events'];
  clients: VercelClients;
  store: DirStateStore;
  target: (cfg: VercelTargetConfig) => Target;
}

function rig(
  opts: { settings?: Partial<VercelRunSettings>; env?: NodeJS.ProcessEnv; runToken?: string } = {},
): Rig {
  const { ctx, events } = testRun({
    dir: tmp,
    env: opts.env ?? { VERCEL_TOKEN: TOKEN },
    runToken: opts.runToken,
  });
  const clients = new VercelClients(ctx, {
    plan: 'pro',
    maxRateLimitWaitMs: 60_000,
    requestTimeoutMs: 5000,
    ...opts.settings,
  });
  const store = new DirStateStore(path.join(tmp, 'state'));
  const timings = { promoteTimeoutMs: 5000, domainsTimeoutMs: 2000 };
  return {
    ctx,
    events,
    clients,
    store,
    target: (cfg) => createVercelTarget(ctx, cfg, { ...clients.for(cfg), store, timings }),
  };
}

const site = (name: string, over: Partial<VercelTargetConfig> = {}) =>
  vercelTarget(name, standin.apiUrl, { team: TEAM.id, domains: [`${name}.example.com`], ...over });

/** preflight → snapshot → deploy, as the pipeline runs a target through a stage. */
async function runDeploy(t: Target, check = healthGate(releaseCheck(standin.caFile))) {
  const pre = await t.preflight('preflight');
  await t.snapshot(pre.current, { infra: false });
  const out = await t.deploy({
    stage: 'production',
    previous: pre.current,
    prepared: pre.prepared,
    checkBeforeActivate: check,
  });
  return { pre, out };
}

/**
 * Asserts the tokens went only into Authorization: every request carried a bearer token (the stand-in checked it),
 * and no other part of any request holds one.
 */
function expectTokenOnlyInHeader(tokens = [TOKEN], allowInvalid = false) {
  expect(standin.requests.length).toBeGreaterThan(0);
  for (const r of standin.requests) {
    expect(allowInvalid ? ['valid', 'invalid'] : ['valid']).toContain(r.auth);
    for (const token of tokens) {
      expect(r.rawPath).not.toContain(token);
      expect(r.rawBody).not.toContain(token);
      expect(JSON.stringify(r.headers)).not.toContain(token);
    }
  }
}

describe('Vercel target against the API stand-in', () => {
  test('a deploy that is READY and healthy is production afterwards, with the documented requests in order', async () => {
    const p = standin.addProject({ name: 'shop', domains: ['shop.example.com'] });
    const before = p.production as string;
    const r = rig();
    const t = r.target(site('shop'));
    const seen: { production: string | null; at: number; url: string }[] = [];
    const gate = healthGate(releaseCheck(standin.caFile));
    const { pre, out } = await runDeploy(t, async (s) => {
      // While the new deployment is checked, production is untouched.
      seen.push({
        production: standin.project('shop').production,
        at: Date.now(),
        url: String(s.vars['target.url']),
      });
      return gate(s);
    });

    expect(pre).toMatchObject({ current: before, onNew: false, lock: 'acquired' });
    expect(out.ok).toBe(true);
    expect(out.switched).toBe(true);
    const created = standin.deploymentsOf('shop').find((d) => d.id !== before);
    expect(created).toBeDefined();
    const id = created!.id;
    expect(out.version).toBe(id);
    // The stand-in's state, not the report: production and the domain moved to the new deployment.
    expect(standin.project('shop').production).toBe(id);
    expect(await standin.servedBy('shop.example.com')).toMatchObject({
      status: 200,
      deployment: id,
      release: r.ctx.release.id,
    });
    expect(seen).toEqual([{ production: before, at: expect.any(Number), url: `https://${created!.url}` }]);
    expect(out.health?.[0]).toMatchObject({ check: 'health', ok: true });

    // Paths, team scope, bodies and order.
    const seq = standin.requests.map((q) => `${q.method} ${q.path}`);
    expect(seq[0]).toBe('GET /v9/projects/shop');
    expect(seq[1]).toBe(`GET /v2/deployments/${before}/aliases`);
    expect(seq[2]).toBe('POST /v13/deployments');
    const promoteAt = seq.indexOf(`POST /v10/projects/${p.id}/promote/${id}`);
    expect(promoteAt).toBeGreaterThan(2);
    expect(seq.slice(3, promoteAt).every((s) => s === `GET /v13/deployments/${id}`)).toBe(true);
    expect(seq.slice(promoteAt + 1)).toContain(`GET /v2/deployments/${id}/aliases`);
    for (const q of standin.requests) expect(q.query.teamId).toBe(TEAM.id);
    const promote = standin.requests[promoteAt];
    expect(promote.body).toEqual({});
    expect(promote.at).toBeGreaterThanOrEqual(seen[0].at);
    const create = standin.requests[2];
    expect(create.headers['content-type']).toBe('application/json');
    expect(create.body).toEqual({
      name: 'shop',
      project: p.id,
      target: 'production',
      autoAssignCustomDomains: false,
      gitSource: { type: 'github', org: 'example', repo: 'shop', ref: 'main', sha: TEST_COMMIT },
      meta: {
        hdRelease: r.ctx.release.id,
        hdCommit: TEST_COMMIT,
        hdPrevious: before,
        hdRunId: '4242',
        hdStage: 'production',
        hdRecordedAt: expect.any(String),
      },
    });
    expectTokenOnlyInHeader();

    // The rollback point: in the store, and on the deployment itself for a job that has neither store nor memory.
    expect(await r.store.readRollbackPoint('shop', r.ctx.release.id)).toMatchObject({ previous: before });
    const other = testRun({ dir: tmp, env: { VERCEL_TOKEN: TOKEN } });
    const fresh = createVercelTarget(other.ctx, site('shop'), {
      ...new VercelClients(other.ctx).for(site('shop')),
      store: new DirStateStore(path.join(tmp, 'other-runner-state')),
    });
    expect(await fresh.readRollbackPoint()).toMatchObject({
      release: r.ctx.release.id,
      previous: before,
      runId: '4242',
    });
    expect(await fresh.readCurrent()).toEqual({ version: id, onNew: true });

    await t.settle({ stage: 'production', previous: before, unchanged: false });
    expect(await t.releaseLock()).toBe(true);
    const status = await t.status();
    expect(status).toMatchObject({ reachable: true, current: id, previous: before, lock: { held: false } });
    expect(status.recent?.at(-1)).toMatchObject({ event: 'deploy', version: id, previous: before });
  });

  test('a build that ends in ERROR leaves the previous production deployment serving', async () => {
    const p = standin.addProject({ name: 'blog', domains: ['blog.example.com'] });
    const before = p.production as string;
    standin.planBuilds(() => true, {
      outcome: 'ERROR',
      errorCode: 'BUILD_FAILED',
      errorMessage: 'Command "npm run build" exited with 1',
    });
    const r = rig();
    const { out } = await runDeploy(r.target(site('blog')));
    expect(out.ok).toBe(false);
    expect(out.switched).toBe(false);
    expect(out.failed).toMatchObject({ name: 'build', ok: false, exitCode: 1 });
    expect(out.failed?.output).toMatch(
      /^deployment dpl_\w+ ERROR at https:\/\/\S+: BUILD_FAILED: Command "npm run build" exited with 1$/,
    );
    expect(standin.project('blog').production).toBe(before);
    expect((await standin.servedBy('blog.example.com')).deployment).toBe(before);
    expect(standin.calls('POST', /promote/)).toHaveLength(0);
  });

  test('a deployment that fails its check before promotion is never promoted', async () => {
    const p = standin.addProject({ name: 'docs', domains: ['docs.example.com'] });
    const before = p.production as string;
    standin.health = (d) => (d.id === before ? 200 : 503);
    const r = rig();
    const t = r.target(site('docs'));
    const err = await runDeploy(t).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeployError);
    expect((err as DeployError).errorClass).toBe('health-failed');
    expect((err as DeployError).message).toContain('expected status 200, got 503');
    expect(standin.project('docs').production).toBe(before);
    expect((await standin.servedBy('docs.example.com')).deployment).toBe(before);
    expect(standin.calls('POST', /promote/)).toHaveLength(0);

    // A retry checks the same READY build again instead of building (and spending quota) a second time.
    standin.health = () => 200;
    const again = await t.deploy({
      stage: 'production',
      previous: before,
      prepared: false,
      checkBeforeActivate: healthGate(releaseCheck(standin.caFile)),
    });
    expect(again.ok).toBe(true);
    expect(standin.calls('POST', /^\/v13\/deployments$/)).toHaveLength(1);
    expect(standin.project('docs').production).toBe(again.version);
  });

  test('rollback returns production to the recorded previous deployment without a rebuild', async () => {
    const p = standin.addProject({ name: 'shop', domains: ['shop.example.com'] });
    const before = p.production as string;
    const r = rig();
    const t = r.target(site('shop'));
    const { out } = await runDeploy(t);
    expect(standin.project('shop').production).toBe(out.version);
    const creates = standin.calls('POST', /^\/v13\/deployments$/).length;

    const point = await t.readRollbackPoint();
    const t0 = Date.now();
    const rb = await t.rollback({ stage: 'production', to: point!.previous });
    const ms = Date.now() - t0;
    expect(rb.ok).toBe(true);
    expect(standin.project('shop').production).toBe(before);
    expect((await standin.servedBy('shop.example.com')).deployment).toBe(before);
    const call = standin.calls('POST', new RegExp(`^/v1/projects/${p.id}/rollback/${before}$`));
    expect(call).toHaveLength(1);
    expect(call[0].query).toMatchObject({
      teamId: TEAM.id,
      description: expect.stringContaining(r.ctx.release.id),
    });
    expect(standin.calls('POST', /^\/v13\/deployments$/)).toHaveLength(creates);
    expect(rb.actions?.[0]).toContain(`to ${before}`);
    expect(ms).toBeLessThan(30_000);

    await expect(t.rollback({ stage: 'production', to: null })).rejects.toMatchObject({
      errorClass: 'precondition',
      message: expect.stringContaining('nothing to roll back to'),
    });
  });

  test('a preview is checked, then promoted through its production build', async () => {
    const p = standin.addProject({ name: 'app', domains: ['app.example.com'] });
    const r = rig();
    const seen: string[] = [];
    const gate = healthGate(releaseCheck(standin.caFile));
    const { out } = await runDeploy(r.target(site('app', { promote: 'preview' })), async (s) => {
      seen.push(String(s.vars['target.deployment']));
      return gate(s);
    });
    expect(out.ok).toBe(true);
    const creates = standin.calls('POST', /^\/v13\/deployments$/);
    expect(creates).toHaveLength(2);
    const [preview, prodBuild] = creates.map((c) => c.body as Record<string, unknown>);
    expect(preview.target).toBeUndefined();
    expect(preview.autoAssignCustomDomains).toBeUndefined();
    const previewId = seen[0];
    expect(standin.deployment(previewId).target).toBeNull();
    expect(prodBuild).toMatchObject({
      deploymentId: previewId,
      target: 'production',
      autoAssignCustomDomains: false,
    });
    expect(out.version).not.toBe(previewId);
    expect(standin.project('app').production).toBe(out.version);
    expect(standin.calls('POST', new RegExp(`/promote/${out.version}$`))).toHaveLength(1);
    expect(p.production).toBe(out.version);
  });

  test('uploaded files: each content is sent once with its SHA1, and the deployment names them', async () => {
    standin.addProject({ name: 'one', production: false });
    standin.addProject({ name: 'two', production: false });
    const r = rig();
    r.ctx.files = [
      { path: 'index.html', data: Buffer.from('<h1>hi</h1>'), mode: 0o644 },
      { path: 'assets/app.js', data: Buffer.from('console.log(1)'), mode: 0o644 },
      { path: 'copy.html', data: Buffer.from('<h1>hi</h1>'), mode: 0o644 },
    ];
    const files = { source: { type: 'files' as const }, domains: [] };
    const results = await Promise.all([
      runDeploy(r.target(site('one', files))),
      runDeploy(r.target(site('two', files))),
    ]);
    for (const { pre, out } of results) {
      expect(pre.current).toBeNull();
      expect(out.ok).toBe(true);
    }
    const uploads = standin.calls('POST', /^\/v2\/files$/);
    expect(uploads).toHaveLength(2);
    expect(uploads.map((u) => u.headers['x-vercel-digest']).sort()).toEqual(
      [...standin.uploaded.keys()].sort(),
    );
    const body = standin.calls('POST', /^\/v13\/deployments$/)[0].body as {
      files: unknown[];
      gitSource?: unknown;
    };
    expect(body.gitSource).toBeUndefined();
    expect(body.files).toEqual(
      expect.arrayContaining([
        { file: 'index.html', sha: expect.stringMatching(/^[0-9a-f]{40}$/), size: 11 },
        { file: 'assets/app.js', sha: expect.any(String), size: 14 },
      ]),
    );
    expect(standin.project('one').production).toBe(results[0].out.version);
  });

  test('429s are waited out: the next request comes no sooner than Retry-After or X-RateLimit-Reset', async () => {
    standin.addProject({ name: 'shop', domains: [] });
    standin.rateLimit({
      match: (q) => q.method === 'POST' && q.path === '/v13/deployments',
      times: 1,
      retryAfterS: 1,
    });
    standin.rateLimit({
      match: (q) => q.method === 'POST' && q.path.includes('/promote/'),
      times: 1,
      resetInS: 2,
      sendRetryAfter: false,
    });
    const r = rig();
    const { out } = await runDeploy(r.target(site('shop', { domains: [] })));
    expect(out.ok).toBe(true);
    const creates = standin.calls('POST', /^\/v13\/deployments$/);
    expect(creates.map((c) => c.status)).toEqual([429, 200]);
    expect(creates[1].at - creates[0].at).toBeGreaterThanOrEqual(1000);
    const promotes = standin.calls('POST', /\/promote\//);
    expect(promotes.map((c) => c.status)).toEqual([429, 201]);
    // Without Retry-After, X-RateLimit-Reset (epoch seconds) says when the next request may go.
    const reset = Number(promotes[0].responseHeaders?.['x-ratelimit-reset']);
    expect(promotes[0].responseHeaders?.['retry-after']).toBeUndefined();
    expect(promotes[1].at).toBeGreaterThanOrEqual(reset * 1000);
    expect(Number(creates[0].responseHeaders?.['retry-after'])).toBe(1);
    expect(r.events.filter((e) => e.type === 'log' && /rate-limited/.test(e.message))).toHaveLength(2);
    expect(r.clients.all[0].pacing.stats()).toMatchObject({ rateLimitWaits: 2 });
  });

  test('a rate limit asking for more than the wait budget stops with a quota error instead of waiting', async () => {
    standin.addProject({ name: 'shop', domains: [] });
    standin.rateLimit({ match: (q) => q.path === '/v13/deployments', times: 1, retryAfterS: 900 });
    const r = rig({ settings: { maxRateLimitWaitMs: 2000 } });
    const t0 = Date.now();
    const err = (await runDeploy(r.target(site('shop', { domains: [] }))).catch((e) => e)) as DeployError;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(err.errorClass).toBe('quota');
    expect(err.message).toMatch(/asks for a wait of 15m, which would pass the wait budget of 2\.0s/);
    expect(standin.calls('POST', /^\/v13\/deployments$/)).toHaveLength(1);
  });

  test('the daily deployment quota stops every target of the team, naming the quota and its reset', async () => {
    for (const n of ['a1', 'a2', 'a3']) standin.addProject({ name: n, domains: [] });
    standin.dailyLimit(1);
    const r = rig();
    const first = await runDeploy(r.target(site('a1', { domains: [] })));
    expect(first.out.ok).toBe(true);
    const err = (await runDeploy(r.target(site('a2', { domains: [] }))).catch((e) => e)) as DeployError;
    expect(err).toBeInstanceOf(DeployError);
    expect(err.errorClass).toBe('quota');
    expect(err.message).toContain('api-deployments-free-per-day: 1 deployments per day');
    expect(err.message).toMatch(/it resets at \d{4}-\d\d-\d\dT[\d:.]+Z \(in 2[34]h\d+m\)/);
    expect(err.message).toContain('This run created 1 deployment(s)');
    const third = (await runDeploy(r.target(site('a3', { domains: [] }))).catch((e) => e)) as DeployError;
    expect(third.errorClass).toBe('quota');
    expect(third.message).toContain('a3: staged production build: not created');
    // The third target sent no create at all: after the refusal nobody asks again.
    expect(standin.calls('POST', /^\/v13\/deployments$/).map((c) => c.status)).toEqual([200, 402]);
    expect(standin.project('a2').production).toBe(standin.deploymentsOf('a2')[0].id);
  });

  test('builds in flight never exceed the configured build limit', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `c${i}`);
    for (const n of names) standin.addProject({ name: n, domains: [] });
    standin.buildMs = 60;
    const r = rig({ settings: { plan: 'pro', concurrentBuilds: 3 } });
    const outs = await Promise.all(names.map((n) => runDeploy(r.target(site(n, { domains: [] })))));
    expect(outs.every((o) => o.out.ok)).toBe(true);
    expect(standin.peakInFlight).toBe(3);
    expect(r.clients.all[0].pacing.stats()).toMatchObject({ peakBuilds: 3, created: 10 });
    for (const n of names) expect(standin.project(n).production).toBe(standin.deploymentsOf(n).at(-1)!.id);
  });

  test('a build past build_timeout is cancelled and reported as a timeout; kill() cancels a running build', async () => {
    const p = standin.addProject({ name: 'slow', domains: [] });
    standin.planBuilds(() => true, { outcome: 'HANG' });
    const r = rig();
    const err = (await runDeploy(r.target(site('slow', { domains: [], buildTimeoutMs: 300 }))).catch(
      (e) => e,
    )) as DeployError;
    expect(err.errorClass).toBe('timeout');
    expect(err.message).toMatch(/was still BUILDING after 300ms \(build_timeout\); it was cancelled/);
    const hung = standin.deploymentsOf('slow').find((d) => d.id !== p.production)!;
    expect(hung.readyState).toBe('CANCELED');
    expect(standin.calls('PATCH', new RegExp(`^/v12/deployments/${hung.id}/cancel$`))).toHaveLength(1);

    standin.addProject({ name: 'slow2', domains: [] });
    const t2 = r.target(site('slow2', { domains: [] }));
    const running = runDeploy(t2);
    while (standin.deploymentsOf('slow2').length < 2) await new Promise((res) => setTimeout(res, 10));
    await t2.kill();
    const out = (await running).out;
    expect(out.ok).toBe(false);
    expect(out.failed?.output).toContain('CANCELED');
    expect(standin.project('slow2').production).toBe(standin.deploymentsOf('slow2')[0].id);

    // kill() while the create is still unanswered: the deployment exists at Vercel but the target does not know
    // its id yet; it must still be cancelled, not left building until build_timeout.
    standin.addProject({ name: 'slow3', domains: [] });
    standin.createAnswerDelayMs = 300;
    const t3 = r.target(site('slow3', { domains: [] }));
    const t0 = Date.now();
    const racing = runDeploy(t3);
    while (standin.deploymentsOf('slow3').length < 2) await new Promise((res) => setTimeout(res, 5));
    await t3.kill();
    const out3 = (await racing).out;
    standin.createAnswerDelayMs = 0;
    expect(out3.ok).toBe(false);
    expect(out3.failed?.output).toContain('CANCELED');
    expect(standin.deploymentsOf('slow3')[1].readyState).toBe('CANCELED');
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  test('the lock keeps a second run out; errors name the project, the team and the token variable', async () => {
    standin.addProject({ name: 'shop', domains: [] });
    const a = rig({ runToken: 'run-a' });
    const b = rig({ runToken: 'run-b' });
    await a.target(site('shop', { domains: [] })).preflight('preflight');
    await expect(b.target(site('shop', { domains: [] })).preflight('preflight')).rejects.toMatchObject({
      errorClass: 'lock-held',
      message: expect.stringContaining('shop is locked by tester'),
    });

    await expect(a.target(site('missing', { domains: [] })).preflight('preflight')).rejects.toMatchObject({
      errorClass: 'config',
      message: expect.stringMatching(
        /missing: pre-flight: GET \/v9\/projects\/missing\?teamId=team_4n8Qd2Lx answered 404 not_found: .*\(team team_4n8Qd2Lx\); check the project name/,
      ),
    });
    await expect(
      a.target(site('shop', { domains: ['www.example.com'] })).preflight('x'),
    ).rejects.toMatchObject({
      errorClass: 'config',
      message: expect.stringContaining('www.example.com does not point at the production deployment'),
    });
    const noToken = rig({ env: {} });
    await expect(noToken.target(site('shop')).preflight('preflight')).rejects.toMatchObject({
      errorClass: 'config',
      message: expect.stringContaining('shop: pre-flight: the Vercel token variable VERCEL_TOKEN is not set'),
    });
    expect(standin.requests.every((q) => q.auth === 'valid')).toBe(true);
  });

  test('the token never appears in events, outcomes, status or errors, even when Vercel rejects it', async () => {
    standin.addProject({ name: 'shop', domains: ['shop.example.com'] });
    standin.addProject({ name: 'bad', domains: [] });
    standin.planBuilds((d) => d.name === 'bad', {
      outcome: 'ERROR',
      errorMessage: `leaked ${TOKEN} in build log`,
    });
    const r = rig();
    const texts: string[] = [];
    const good = r.target(site('shop'));
    texts.push(JSON.stringify(await runDeploy(good)));
    texts.push(JSON.stringify(await good.status()));
    texts.push(JSON.stringify(await runDeploy(r.target(site('bad', { domains: [] })))));
    texts.push(
      JSON.stringify(await r.target(site('shop')).rollback({ stage: 'production', to: 'dpl_nope' })),
    );
    const wrong = 'vcp_wrong_9sK2mQ7xZ4pL1nB8';
    const w = rig({ env: { VERCEL_TOKEN: wrong } });
    const err = (await w
      .target(site('shop'))
      .preflight('preflight')
      .catch((e) => e)) as DeployError;
    expect(err.errorClass).toBe('auth');
    expect(err.message).toContain('answered 403 forbidden: Not authorized');
    expect(err.message).toContain('check that VERCEL_TOKEN holds a valid Vercel token');
    texts.push(err.message, String(err.stack), JSON.stringify(w.ctx.errorInfo(err)));
    texts.push(JSON.stringify(r.events), JSON.stringify(w.events));
    texts.push(JSON.stringify(await r.store.readReleaseLog('shop')), await r.store.readAudit('shop', 100));
    const all = texts.join('\n');
    expect(all).toContain('leaked *** in build log');
    for (const secret of [TOKEN, wrong]) expect(all).not.toContain(secret);
    expect(standin.requests.filter((q) => q.auth === 'invalid')).toHaveLength(1);
    expectTokenOnlyInHeader([TOKEN, wrong], true);
  });

  test('every request has a time limit: a stalled read is retried, a stalled create fails as a timeout', async () => {
    standin.addProject({ name: 'shop', domains: [] });
    standin.fault({ match: (q) => q.method === 'GET' && q.path === '/v9/projects/shop', fault: 'stall' });
    standin.fault({
      match: (q) => q.method === 'GET' && q.path === '/v9/projects/shop',
      fault: { status: 502 },
    });
    const r = rig({ settings: { requestTimeoutMs: 300 } });
    const t = r.target(site('shop', { domains: [] }));
    const pre = await t.preflight('preflight');
    expect(standin.calls('GET', /^\/v9\/projects\/shop$/).map((q) => q.status)).toEqual([
      undefined,
      502,
      200,
    ]);
    standin.fault({ match: (q) => q.method === 'POST' && q.path === '/v13/deployments', fault: 'stall' });
    const err = (await t
      .deploy({
        stage: 'production',
        previous: pre.current,
        prepared: false,
        checkBeforeActivate: healthGate(releaseCheck(standin.caFile)),
      })
      .catch((e) => e)) as DeployError;
    expect(err.errorClass).toBe('timeout');
    expect(err.message).toBe(
      `shop: staged production build: POST /v13/deployments?teamId=${TEAM.id} got no complete answer within 300ms`,
    );
    // A create is never sent twice: a lost answer may still have made a deployment.
    expect(standin.calls('POST', /^\/v13\/deployments$/)).toHaveLength(1);
  });

  test('an API that cannot be reached is unreachable, named by its origin, never with the token', async () => {
    // A port that was just free: nothing listens there.
    const closed = await new Promise<number>((res) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (srv.address() as net.AddressInfo).port;
        srv.close(() => res(port));
      });
    });
    const r = rig();
    const t = r.target(vercelTarget('shop', `http://127.0.0.1:${closed}`, { team: TEAM.id }));
    const err = (await t.preflight('preflight').catch((e) => e)) as DeployError;
    expect(err.errorClass).toBe('unreachable');
    expect(err.message).toMatch(
      /^shop: pre-flight: could not reach the Vercel API at http:\/\/127\.0\.0\.1:\d+ for GET \/v9\/projects\/shop\?teamId=team_4n8Qd2Lx \(ECONNREFUSED\)$/,
    );
  });

  test('a rollback of a cancelled run is handed to Vercel after handOverWaitMs; Vercel finishes it', async () => {
    const p = standin.addProject({ name: 'shop', domains: ['shop.example.com'] });
    const before = p.production as string;
    const r = rig();
    const t = r.target(site('shop'));
    await runDeploy(t);
    standin.rollbackMs = 400;
    const rb = await t.rollback({ stage: 'production', to: before, handOverWaitMs: 50 });
    expect(rb).toMatchObject({ ok: true, pending: true, handedOver: true });
    expect(standin.project('shop').production).not.toBe(before);
    await new Promise((res) => setTimeout(res, 500));
    expect(standin.project('shop').production).toBe(before);
    expect((await standin.servedBy('shop.example.com')).deployment).toBe(before);
  });

  test('a cancelled run stops waiting for a build slot and creates nothing', async () => {
    standin.addProject({ name: 'q1', domains: [] });
    standin.addProject({ name: 'q2', domains: [] });
    standin.planBuilds((d) => d.name === 'q1', { outcome: 'HANG' });
    const ac = new AbortController();
    const { ctx } = testRun({ dir: tmp, env: { VERCEL_TOKEN: TOKEN }, signal: ac.signal });
    const clients = new VercelClients(ctx, {
      plan: 'hobby',
      maxRateLimitWaitMs: 1000,
      requestTimeoutMs: 5000,
    });
    const store = new DirStateStore(path.join(tmp, 'state'));
    const [a, b] = ['q1', 'q2'].map((n) =>
      createVercelTarget(ctx, site(n, { domains: [] }), { ...clients.for(site(n)), store }),
    );
    const first = runDeploy(a).catch((e: DeployError) => e);
    while (standin.deploymentsOf('q1').length < 2) await new Promise((res) => setTimeout(res, 10));
    const second = runDeploy(b).catch((e: DeployError) => e);
    await new Promise((res) => setTimeout(res, 100));
    ac.abort();
    const [e1, e2] = (await Promise.all([first, second])) as DeployError[];
    expect(e1.errorClass).toBe('cancelled');
    expect(e2).toMatchObject({
      errorClass: 'cancelled',
      message: 'q2: staged production build: cancelled while waiting for a build slot',
    });
    expect(standin.deploymentsOf('q2')).toHaveLength(1);
    const hung = standin.deploymentsOf('q1').find((d) => d.id !== standin.project('q1').production)!;
    expect(hung.readyState).toBe('CANCELED');
  });

  test('health subjects: the vars of a deployment and of production, and command checks run on the runner', async () => {
    const p = standin.addProject({ name: 'shop', domains: ['shop.example.com', 'www.shop.example.com'] });
    const before = p.production as string;
    for (const d of p.domains) standin.aliases.set(d, before);
    const r = rig();
    const t = r.target(site('shop', { domains: ['shop.example.com'], vars: { region: 'eu' } }));
    const { out } = await runDeploy(t);
    const live = t.healthSubject('production');
    expect(live.vars).toEqual({
      'target.name': 'shop',
      'target.kind': 'vercel',
      'target.project': 'shop',
      'target.url': `https://${standin.deployment(out.version as string).url}`,
      'target.deployment': out.version,
      'target.deployment_url': `https://${standin.deployment(out.version as string).url}`,
      'target.domain': 'shop.example.com',
      'target.production_url': 'https://shop.example.com',
      'target.vars.region': 'eu',
      'release.id': r.ctx.release.id,
      'release.commit': TEST_COMMIT,
      project: 'sites',
      'stage.name': 'production',
    });
    expect(t.healthSubject('production', before).vars['target.url']).toBe(
      `https://${standin.deployment(before).url}`,
    );
    const res = await live.exec('printf "%s" "$PWD"; echo " err" >&2; exit 3', {
      timeoutMs: 5000,
      signal: new AbortController().signal,
    });
    expect(res).toMatchObject({ code: 3, stdout: fs.realpathSync(tmp), stderr: ' err\n' });
    const slow = await live.exec('sleep 5', { timeoutMs: 200, signal: new AbortController().signal });
    expect(slow.code).toBeNull();
  });
});
