import {
  classifyStatus,
  dailyQuotaOf,
  epochMs,
  exhaustedUntil,
  parseTryAgainIn,
  rateLimitWaitMs,
} from '../../src/targets/vercel/errors';
import {
  createDeploymentBody,
  deploymentMeta,
  fileDigests,
  gitRef,
  gitSourceFor,
  pointFromMeta,
  teamQuery,
} from '../../src/targets/vercel/requests';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const SHA = 'a'.repeat(40);

describe('reading Vercel error answers', () => {
  test('the daily quota is recognised by its code, with total and reset from the limit object', () => {
    const body = {
      error: {
        code: 'api-deployments-free-per-day',
        message:
          'Resource is limited - try again in 24 hours (more than 100, code: "api-deployments-free-per-day").',
        limit: { total: 100, remaining: 0, reset: NOW + 3_600_000 },
      },
    };
    expect(dailyQuotaOf(402, body, NOW)).toEqual({
      code: 'api-deployments-free-per-day',
      message: body.error.message,
      total: 100,
      resetAt: NOW + 3_600_000,
    });
  });

  test('without a limit object, total and reset come from the message; other codes are not the quota', () => {
    const q = dailyQuotaOf(
      429,
      {
        error: {
          code: 'rate_limited',
          message:
            'Resource is limited - try again in 2 hours (more than 6000, code: "api-deployments-per-day").',
        },
      },
      NOW,
    );
    expect(q).toMatchObject({ code: 'api-deployments-per-day', total: 6000, resetAt: NOW + 7_200_000 });
    expect(
      dailyQuotaOf(429, { error: { code: 'rate_limited', message: 'Try again in 7 days' } }, NOW),
    ).toBeUndefined();
    expect(dailyQuotaOf(200, { error: { code: 'api-deployments-free-per-day' } })).toBeUndefined();
    expect(dailyQuotaOf(402, 'Payment Required')).toBeUndefined();
  });

  test('"try again in" units, and reset values in seconds or milliseconds', () => {
    expect(parseTryAgainIn('try again in 1 minute')).toBe(60_000);
    expect(parseTryAgainIn('Try again in 30 seconds')).toBe(30_000);
    expect(parseTryAgainIn('try again in 3h')).toBe(10_800_000);
    expect(parseTryAgainIn('try again in 7 days')).toBe(7 * 86_400_000);
    expect(parseTryAgainIn('no time named')).toBeUndefined();
    expect(epochMs(1_571_432_075)).toBe(1_571_432_075_000);
    expect(epochMs(1_571_432_075_563)).toBe(1_571_432_075_563);
  });

  test('the wait a 429 names: Retry-After first (seconds or a date), then X-RateLimit-Reset, then the body', () => {
    const h = (o: Record<string, string>) => new Headers(o);
    expect(
      rateLimitWaitMs(h({ 'retry-after': '7', 'x-ratelimit-reset': String(NOW / 1000 + 60) }), {}, NOW),
    ).toBe(7000);
    expect(rateLimitWaitMs(h({ 'retry-after': new Date(NOW + 5000).toUTCString() }), {}, NOW)).toBe(5000);
    expect(rateLimitWaitMs(h({ 'x-ratelimit-reset': String(NOW / 1000 + 12) }), {}, NOW)).toBe(12_000);
    expect(
      rateLimitWaitMs(h({}), { error: { limit: { reset: NOW / 1000 + 3, resetMs: NOW + 3000 } } }, NOW),
    ).toBe(3000);
    expect(rateLimitWaitMs(h({}), { error: { limit: { reset: NOW / 1000 + 4 } } }, NOW)).toBe(4000);
    expect(rateLimitWaitMs(h({}), {}, NOW)).toBeUndefined();
    expect(rateLimitWaitMs(h({ 'x-ratelimit-reset': String(NOW / 1000 - 5) }), {}, NOW)).toBe(0);
  });

  test('a success with nothing remaining closes the endpoint until its reset', () => {
    expect(
      exhaustedUntil(new Headers({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1700000000' })),
    ).toBe(1_700_000_000_000);
    expect(
      exhaustedUntil(new Headers({ 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '1700000000' })),
    ).toBeUndefined();
    expect(exhaustedUntil(new Headers({}))).toBeUndefined();
  });

  test('status classes: the token, the config, the project state, Vercel itself', () => {
    expect(classifyStatus(401, 'get-deployment')).toBe('auth');
    expect(classifyStatus(403, 'create-deployment')).toBe('auth');
    expect(classifyStatus(404, 'get-project')).toBe('config');
    expect(classifyStatus(404, 'rollback')).toBe('precondition');
    expect(classifyStatus(400, 'create-deployment')).toBe('config');
    expect(classifyStatus(409, 'rollback')).toBe('precondition');
    expect(classifyStatus(402, 'create-deployment')).toBe('quota');
    expect(classifyStatus(503, 'get-project')).toBe('unreachable');
  });
});

describe('what the Vercel target sends', () => {
  test('team scope: an id goes as teamId, a slug as slug, nothing for a personal account', () => {
    expect(teamQuery('team_abc')).toEqual({ teamId: 'team_abc' });
    expect(teamQuery('my-team')).toEqual({ slug: 'my-team' });
    expect(teamQuery(undefined)).toEqual({});
  });

  test('git sources carry the full commit and a plain ref, per provider', () => {
    const rel = { commit: SHA, ref: 'refs/heads/main' };
    expect(gitSourceFor('shop', { type: 'git', provider: 'github', repo: 'example/shop' }, rel)).toEqual({
      type: 'github',
      org: 'example',
      repo: 'shop',
      ref: 'main',
      sha: SHA,
    });
    expect(gitSourceFor('shop', { type: 'git', provider: 'gitlab', repo: '12345' }, rel)).toEqual({
      type: 'gitlab',
      projectId: '12345',
      ref: 'main',
      sha: SHA,
    });
    expect(gitSourceFor('shop', { type: 'git', provider: 'bitbucket', repo: 'team/site' }, rel)).toEqual({
      type: 'bitbucket',
      owner: 'team',
      slug: 'site',
      ref: 'main',
      sha: SHA,
    });
    expect(gitRef('refs/tags/v1.2.0')).toBe('v1.2.0');
    expect(() => gitSourceFor('shop', { type: 'git', provider: 'github', repo: 'shop' }, rel)).toThrow(
      'targets.shop.source.repo: expected "owner/name" for github, got "shop"',
    );
    expect(() =>
      gitSourceFor(
        'shop',
        { type: 'git', provider: 'github', repo: 'a/b' },
        { commit: 'abc123', ref: 'main' },
      ),
    ).toThrow('a git source needs the full 40-character commit SHA, got "abc123"');
  });

  test('bodies: staged production without domains, a plain preview, the production build of a preview', () => {
    const meta = { hdRelease: 'r1' };
    const gitSource = { type: 'github' as const, org: 'o', repo: 'r', ref: 'main', sha: SHA };
    expect(
      createDeploymentBody({
        kind: 'staged-production',
        projectId: 'prj_1',
        projectName: 'shop',
        meta,
        gitSource,
      }),
    ).toEqual({
      name: 'shop',
      project: 'prj_1',
      meta,
      gitSource,
      target: 'production',
      autoAssignCustomDomains: false,
    });
    expect(
      createDeploymentBody({ kind: 'preview', projectId: 'prj_1', projectName: 'shop', meta, gitSource }),
    ).toEqual({
      name: 'shop',
      project: 'prj_1',
      meta,
      gitSource,
    });
    expect(
      createDeploymentBody({
        kind: 'production-from-preview',
        projectId: 'prj_1',
        projectName: 'shop',
        meta,
        fromDeployment: 'dpl_9',
      }),
    ).toEqual({
      name: 'shop',
      project: 'prj_1',
      meta,
      deploymentId: 'dpl_9',
      target: 'production',
      autoAssignCustomDomains: false,
    });
  });

  test('metadata round-trips the rollback point, and belongs only to its own release', () => {
    const meta = deploymentMeta({
      release: 'abc',
      commit: SHA,
      previous: null,
      runId: '7',
      stage: 'production',
      recordedAt: '2026-01-15T12:00:00.000Z',
    });
    expect(Object.values(meta).every((v) => typeof v === 'string')).toBe(true);
    expect(pointFromMeta(meta, 'abc')).toEqual({
      release: 'abc',
      previous: null,
      recordedAt: '2026-01-15T12:00:00.000Z',
      runId: '7',
    });
    expect(pointFromMeta({ ...meta, hdPrevious: 'dpl_1' }, 'abc')?.previous).toBe('dpl_1');
    expect(pointFromMeta(meta, 'other')).toBeUndefined();
    expect(pointFromMeta(undefined, 'abc')).toBeUndefined();
  });

  test('file digests are the SHA1 Vercel checks against x-vercel-digest', () => {
    expect(fileDigests([{ path: 'a.txt', data: Buffer.from('hello') }])).toEqual([
      { path: 'a.txt', sha: 'aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d', size: 5, data: Buffer.from('hello') },
    ]);
  });
});
