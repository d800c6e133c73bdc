import { setMaxListeners } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DirStateStore } from '../../src/targets/state/dir-store';
import { createVercelTarget, estimate, VercelClients } from '../../src/targets/vercel';
import { mapLimit } from '../../src/util/concurrency';
import {
  healthGate,
  releaseCheck,
  startVercelStandin,
  testRun,
  vercelTarget,
  type VercelStandin,
} from '../helpers/vercel-standin';

/**
 * A fleet of 200 Vercel sites of one team deployed through the Target interface and the shared pacing, against the
 * stand-in: every site ends on its new deployment (read from the stand-in's state), builds never exceed the
 * plan's limit, and the figures (wall time, requests, peak RSS) are printed for the closing note. The figures
 * are not asserted: the benchmark is where speed is judged.
 */

const TOKEN = 'vcp_fleet_Q8w2Er5Ty7Ui9Op1';
const TEAM = { id: 'team_fleet01', slug: 'fleet' };
/** 200 by default; HD_VERCEL_FLEET_SITES=1500 gives the figure for a fleet of 1500. */
const SITES = Number(process.env.HD_VERCEL_FLEET_SITES ?? 200);
const PARALLEL = 50;

let standin: VercelStandin;
let tmp: string;

beforeAll(async () => {
  standin = await startVercelStandin({ token: TOKEN, team: TEAM, queueMs: 5, buildMs: 40, promoteMs: 5 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-vercel-fleet-'));
});

afterAll(async () => {
  await standin.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test(`${SITES} Vercel sites in one run: all promoted, builds within the plan, figures for the closing note`, async () => {
  const names = Array.from({ length: SITES }, (_, i) => `site-${String(i).padStart(4, '0')}`);
  const before = new Map<string, string>();
  for (const n of names)
    before.set(n, standin.addProject({ name: n, domains: [`${n}.example.com`] }).production as string);

  // Every target in flight listens on the run's cancellation (waiting for a build slot, a poll, a request): with 50
  // at once that is past Node's default warning threshold of 10, which is not a leak.
  const run = new AbortController();
  setMaxListeners(PARALLEL * 4, run.signal);
  const { ctx, events } = testRun({ dir: tmp, env: { VERCEL_TOKEN: TOKEN }, signal: run.signal });
  const clients = new VercelClients(ctx, {
    plan: 'pro',
    maxRateLimitWaitMs: 60_000,
    requestTimeoutMs: 10_000,
  });
  const store = new DirStateStore(path.join(tmp, 'state'));
  const check = healthGate(releaseCheck(standin.caFile));
  const plan = estimate({ targets: SITES, concurrency: PARALLEL, plan: 'pro', perDeploySeconds: 60 });

  let peakRss = process.memoryUsage().rss;
  const rssAtStart = peakRss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  const targets = new Map<string, ReturnType<typeof createVercelTarget>>();
  const results = await mapLimit(names, PARALLEL, async (n) => {
    const cfg = vercelTarget(n, standin.apiUrl, {
      team: TEAM.id,
      domains: [`${n}.example.com`],
      pollIntervalMs: 25,
    });
    const t = createVercelTarget(ctx, cfg, { ...clients.for(cfg), store });
    targets.set(n, t);
    const pre = await t.preflight('preflight');
    await t.snapshot(pre.current, { infra: false });
    const out = await t.deploy({
      stage: 'production',
      previous: pre.current,
      prepared: false,
      checkBeforeActivate: check,
    });
    await t.settle({ stage: 'production', previous: pre.current, unchanged: false });
    await t.releaseLock();
    return out;
  });
  const wallMs = performance.now() - t0;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);

  expect(results.every((r) => r.ok && r.switched)).toBe(true);
  for (const [i, n] of names.entries()) {
    const p = standin.project(n);
    expect(p.production).toBe(results[i].version);
    expect(p.production).not.toBe(before.get(n));
  }
  expect(standin.peakInFlight).toBeLessThanOrEqual(12);
  const stats = clients.all[0].pacing.stats();
  expect(stats).toMatchObject({ created: SITES, quotaStopped: false });
  expect(stats.peakBuilds).toBeLessThanOrEqual(12);
  expect(clients.requests).toBe(standin.requests.length);
  expect(events.filter((e) => e.type === 'log' && e.level === 'warn')).toEqual([]);

  // The whole fleet back to its previous deployments: Vercel's instant rollback, no builds.
  const deployRequests = standin.requests.length;
  const r0 = performance.now();
  const rollbacks = await mapLimit(names, PARALLEL, (n) =>
    targets.get(n)!.rollback({ stage: 'production', to: before.get(n) as string }),
  );
  const rollbackMs = performance.now() - r0;
  expect(rollbacks.every((r) => r.ok)).toBe(true);
  for (const n of names) expect(standin.project(n).production).toBe(before.get(n));
  expect(standin.calls('POST', /^\/v13\/deployments$/)).toHaveLength(SITES);
  expect(standin.requests.every((q) => q.auth === 'valid')).toBe(true);

  const byEndpoint = new Map<string, number>();
  for (const q of standin.requests) {
    const key = `${q.method} ${q.path
      .replace(/dpl_\w+/g, '{id}')
      .replace(/prj_\w+/g, '{project}')
      .replace(/site-\d+/g, '{name}')}`;
    byEndpoint.set(key, (byEndpoint.get(key) ?? 0) + 1);
  }
  const mb = (b: number) => `${Math.round(b / 1e6)} MB`;
  console.log(
    [
      `Vercel fleet: ${SITES} sites, ${PARALLEL} in parallel, plan pro (${stats.limits.concurrentBuilds} builds at once), stand-in build ${standin.buildMs}ms, poll 25ms`,
      `  deploy: wall ${(wallMs / 1000).toFixed(2)}s, ${deployRequests} API requests (${(deployRequests / SITES).toFixed(1)} per site), peak builds ${stats.peakBuilds}`,
      `  rollback of all ${SITES}: ${(rollbackMs / 1000).toFixed(2)}s, ${standin.requests.length - deployRequests} API requests`,
      `  RSS at start ${mb(rssAtStart)}, peak ${mb(peakRss)} (+${mb(peakRss - rssAtStart)}; jest's own memory included)`,
      `  plan estimate at 60s per deploy: ${plan.deployments} deployments, ${(plan.quotaShare * 100).toFixed(1)}% of the daily quota, ${Math.round(plan.expectedWallSeconds / 60)} min`,
      ...[...byEndpoint].sort((a, b) => b[1] - a[1]).map(([k, v]) => `    ${String(v).padStart(5)}  ${k}`),
    ].join('\n'),
  );
}, 600_000);
