import { DeployError } from '../../src/errors';
import { estimate, formatWait, resolveLimits, VercelPacing } from '../../src/targets/vercel/pacing';

const never = new AbortController().signal;

describe('plan limits', () => {
  test('hobby and pro take the documented limits; overrides replace them; enterprise needs both set', () => {
    expect(resolveLimits({ plan: 'hobby' })).toEqual({ concurrentBuilds: 1, deploymentsPerDay: 100 });
    expect(resolveLimits({ plan: 'pro' })).toEqual({ concurrentBuilds: 12, deploymentsPerDay: 6000 });
    expect(resolveLimits({ plan: 'pro', concurrentBuilds: 24 })).toEqual({
      concurrentBuilds: 24,
      deploymentsPerDay: 6000,
    });
    expect(resolveLimits({ plan: 'enterprise', concurrentBuilds: 50, deploymentsPerDay: 20000 })).toEqual({
      concurrentBuilds: 50,
      deploymentsPerDay: 20000,
    });
    expect(() => resolveLimits({ plan: 'enterprise', concurrentBuilds: 50 })).toThrow(
      'vercel plan "enterprise" has no published limits: set concurrent_builds and deployments_per_day (got 50 and none)',
    );
    expect(() => resolveLimits({ plan: 'pro', concurrentBuilds: 0 })).toThrow(
      'vercel concurrentBuilds: expected a whole number of at least 1, got 0',
    );
  });
});

describe('estimate (what plan shows before anything runs)', () => {
  test('1500 sites on pro at concurrency 50: 12 builds at a time, a quarter of the daily quota', () => {
    expect(estimate({ targets: 1500, concurrency: 50, plan: 'pro', perDeploySeconds: 60 })).toEqual({
      targets: 1500,
      deployments: 1500,
      deploymentsPerDay: 6000,
      quotaShare: 0.25,
      parallelBuilds: 12,
      expectedWallSeconds: 125 * 60,
      fitsQuota: true,
      notes: ["concurrency 50 is above the plan's 12 concurrent builds: builds wait for a slot"],
    });
  });

  test('preview promotion builds twice; a run past the quota says so', () => {
    const e = estimate({
      targets: [{ promote: 'preview' }, { promote: 'production' }, { promote: 'preview' }],
      concurrency: 1,
      plan: 'hobby',
      perDeploySeconds: 40,
      usedToday: 97,
    });
    expect(e).toMatchObject({
      targets: 3,
      deployments: 5,
      quotaShare: 0.05,
      parallelBuilds: 1,
      expectedWallSeconds: 200,
      fitsQuota: false,
    });
    expect(e.notes).toEqual([
      '5 deployments (+97 already today) exceed the daily quota of 100: the run stops when Vercel refuses, after about 3 deployments',
      'targets with promote: preview create two deployments each (the preview, then its production build)',
    ]);
  });

  test('limits configured for the team change the answer', () => {
    expect(
      estimate({
        targets: 30,
        concurrency: 10,
        plan: 'pro',
        limits: { concurrentBuilds: 5, deploymentsPerDay: 20 },
        perDeploySeconds: 10,
      }),
    ).toMatchObject({
      deployments: 30,
      parallelBuilds: 5,
      expectedWallSeconds: 60,
      fitsQuota: false,
      quotaShare: 1.5,
    });
  });
});

describe('VercelPacing', () => {
  test('holds builds at the limit and counts only what Vercel confirmed', async () => {
    const p = new VercelPacing('team t', { plan: 'pro', concurrentBuilds: 2, maxRateLimitWaitMs: 1000 });
    const a = await p.startBuild('a', never);
    const b = await p.startBuild('b', never);
    let third = false;
    const c = p.startBuild('c', never).then((s) => ((third = true), s));
    await new Promise((r) => setTimeout(r, 20));
    expect(third).toBe(false);
    a.created();
    a.done();
    const cs = await c;
    expect(third).toBe(true);
    b.unreserve();
    b.done();
    cs.created();
    cs.done();
    expect(p.stats()).toMatchObject({ created: 2, peakBuilds: 2, buildsInFlight: 0 });
  });

  test('refuses before sending once the configured daily limit would be passed', async () => {
    const p = new VercelPacing('team t', { plan: 'hobby', deploymentsPerDay: 2, maxRateLimitWaitMs: 1000 });
    for (const n of ['a', 'b']) {
      const s = await p.startBuild(n, never);
      s.created();
      s.done();
    }
    const err = (await p.startBuild('shop: build', never).catch((e) => e)) as DeployError;
    expect(err.errorClass).toBe('quota');
    expect(err.message).toBe(
      'shop: build: not created, because it would pass the daily deployment limit of 2 configured for team t (plan hobby); this run has created or is creating 2. Raise deployments_per_day if the plan allows more, or deploy the rest tomorrow',
    );
    expect(p.stats().buildsInFlight).toBe(0);
  });

  test('after the quota answer every later build is refused at once with the same reason', async () => {
    const now = Date.UTC(2026, 0, 15, 12, 0, 0);
    const p = new VercelPacing('team t', { plan: 'pro', maxRateLimitWaitMs: 1000 }, { now: () => now });
    const err = p.stopForQuota(
      { code: 'api-deployments-free-per-day', message: '', total: 100, resetAt: now + 5_400_000 },
      'a: build',
    );
    expect(err.message).toContain('it resets at 2026-01-15T13:30:00.000Z (in 1h30m)');
    const later = (await p.startBuild('b: build', never).catch((e) => e)) as DeployError;
    expect(later.errorClass).toBe('quota');
    expect(later.message).toBe(`b: build: not created. ${err.message}`);
  });

  test('a closed gate holds requests of its endpoint only, and a wait past the budget is refused without waiting', async () => {
    const p = new VercelPacing('team t', { plan: 'pro', maxRateLimitWaitMs: 500 });
    p.closeGate('create-deployment', Date.now() + 150);
    const t0 = Date.now();
    await p.beforeRequest('get-deployment', { waitedMs: 0 }, never, 'x');
    expect(Date.now() - t0).toBeLessThan(50);
    await p.beforeRequest('create-deployment', { waitedMs: 0 }, never, 'x');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    const budget = { waitedMs: 400 };
    const t1 = Date.now();
    await expect(p.rateLimited('promote', 200, budget, never, 'shop: promote')).rejects.toMatchObject({
      errorClass: 'quota',
      message: expect.stringContaining(
        "shop: promote: Vercel's rate limit for promote asks for a wait of 200ms",
      ),
    });
    expect(Date.now() - t1).toBeLessThan(50);
  });

  test('waits end early when the run is cancelled', async () => {
    const p = new VercelPacing('team t', { plan: 'pro', maxRateLimitWaitMs: 60_000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    const t0 = Date.now();
    await expect(p.rateLimited('get-project', 10_000, { waitedMs: 0 }, ac.signal, 'x')).rejects.toMatchObject(
      {
        errorClass: 'cancelled',
      },
    );
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  test('wait texts', () => {
    expect(formatWait(1500)).toBe('1.5s');
    expect(formatWait(900_000)).toBe('15m');
    expect(formatWait(86_400_000)).toBe('24h0m');
  });
});
