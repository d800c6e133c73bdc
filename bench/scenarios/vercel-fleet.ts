import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureDebianPackage } from '../lib/packages';
import { ScratchRepo } from '../tools/git-repo';
import { homelabLabel, releaseIdOf } from '../tools/homelab';
import { readReport, reportTimings } from '../tools/report-file';
import { inventoryCsv, INVENTORY_FILE, siteNames, vercelFleetConfig } from '../vercel/config';
import type { ProjectState, StandinSettings, StandinStats } from '../vercel/protocol';
import { startStandin, type StandinHandle } from '../vercel/standin';
import { logTail, noteTimeout, slug } from './deploy-run';
import { fleetParallels } from './fleet-tools';
import {
  Interrupted,
  type Count,
  type Measurement,
  type RunFigures,
  type Scenario,
  type ScenarioContext,
  type Timing,
} from './types';

const TOKEN = 'vcp_bench_3Lm9Qx7Rt2Wz5Kp8';
/**
 * The stand-in's clock: a build queues 5 ms and builds 40 ms, a promotion takes 5 ms, and the CLI polls every
 * 25 ms. Real builds take a minute; these make the figures the CLI's own cost (requests, pacing, checks), not
 * Vercel's. The same settings as the project's 200-site Vercel fleet test.
 */
const SETTINGS: StandinSettings = {
  token: TOKEN,
  team: { id: 'team_bench01', slug: 'bench' },
  queueMs: 5,
  buildMs: 40,
  promoteMs: 5,
};
const POLL_INTERVAL = '25ms';

type Check = (name: string, p: ProjectState | undefined) => string | undefined;

/** How many sites' stand-in state fails `check`, and a failure text naming the first (undefined when none). */
function wrongSites(
  stats: StandinStats,
  names: string[],
  check: Check,
  what: string,
): { count: number; text?: string } {
  const bad = names
    .map((n) => [n, check(n, stats.projects[n])] as const)
    .filter((x): x is readonly [string, string] => x[1] !== undefined);
  if (!bad.length) return { count: 0 };
  const shown = bad
    .slice(0, 5)
    .map(([n, why]) => `    ${n}: ${why}`)
    .join('\n');
  return { count: bad.length, text: `${bad.length} of ${names.length} sites ${what}:\n${shown}` };
}

function runFailure(ctx: ScenarioContext, f: RunFigures & { logFile: string }): string | undefined {
  if (f.timedOut) return `timed out after ${Math.round(ctx.options.timeoutMs / 1000)} s`;
  if (f.exitCode !== 0) return `exit ${f.exitCode ?? f.signal} (log ${f.logFile}):\n${logTail(f.logFile)}`;
  return undefined;
}

function requestCounts(tool: string, what: string, n: number, s: StandinStats, since: number): Count[] {
  const made = s.requests - since;
  return [
    { tool, label: `${what}: API requests`, value: made },
    { tool, label: `${what}: API requests per site`, value: made / n },
    { tool, label: `${what}: deployments created`, value: s.deploymentsCreated },
    { tool, label: `${what}: answers 429 or 5xx`, value: s.throttled },
    { tool, label: `${what}: requests without the right token`, value: s.badAuth },
    ...Object.entries(s.byEndpoint)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => ({ tool, label: `${what}: ${k}`, value: v })),
  ];
}

interface Outcome {
  measurements: Measurement[];
  timings: Timing[];
  counts: Count[];
  notes: string[];
}

async function deployAndRollBack(
  ctx: ScenarioContext,
  standin: StandinHandle,
  parallel: number | undefined,
  out: Outcome,
): Promise<void> {
  const tool = homelabLabel(parallel);
  const n = ctx.n;
  const names = siteNames(n);
  const dir = path.join(ctx.workdir, `vercel-${slug(tool)}`);
  fs.rmSync(dir, { recursive: true, force: true });
  const before = await standin.addProjects(names);
  const repo = new ScratchRepo(path.join(dir, 'repo'));
  const configFile = path.join(repo.dir, 'deploy.yml');
  const commit = await repo.commit(
    {
      'deploy.yml': vercelFleetConfig({
        names,
        apiUrl: standin.apiUrl,
        caFile: standin.caFile,
        team: SETTINGS.team.id,
        stateDir: path.join(dir, 'state'),
        parallel,
        pollInterval: POLL_INTERVAL,
      }),
      [INVENTORY_FILE]: inventoryCsv(names),
    },
    `${n} sites`,
  );
  const rid = releaseIdOf(commit);
  const env = { ...process.env, VERCEL_TOKEN: TOKEN };
  const row = (
    what: string,
    figures: RunFigures | undefined,
    verified: number | undefined,
    failure?: string,
  ) => out.measurements.push({ tool, family: 'homelab', what, n, figures, verifiedHosts: verified, failure });

  // The deploy: every site on a new production deployment of this commit, its domain pointing at it.
  const deployReport = path.join(dir, 'run.json');
  const mark = (await standin.state([], 0)).requests;
  const cpu0 = standin.cpuSeconds();
  ctx.log(`${tool}: deploy of ${n} Vercel sites`);
  const deployed = await ctx.measure(
    {
      command: process.execPath,
      args: [ctx.cli, 'run', '--config', configFile, '--ref', commit, '--yes', '--report-file', deployReport],
      cwd: repo.dir,
      env,
    },
    `vercel-${slug(tool)}-deploy`,
  );
  if (deployed.interrupted) throw new Interrupted();
  deployed.serverCpuSeconds = standin.cpuSeconds() - cpu0;
  deployed.hostProcesses = NaN; // no host is involved; an idle sshd fleet may be up for other scenarios
  const afterDeploy = await standin.state(names, mark);
  const wrong = wrongSites(
    afterDeploy,
    names,
    (name, p) =>
      !p
        ? 'unknown to the stand-in'
        : p.production === before[name]
          ? 'still on its old production deployment'
          : p.release !== rid
            ? `production deployment ${p.production} is of release ${p.release}, expected ${rid}`
            : p.domains !== p.production
              ? `its domain points at ${p.domains ?? 'several deployments'}, not ${p.production}`
              : undefined,
    `not on release ${rid}`,
  );
  const deployFailure = [runFailure(ctx, deployed), wrong.text].filter(Boolean).join('\n  ') || undefined;
  if (deployed.timedOut) noteTimeout(ctx, tool);
  row('vercel deploy', deployed, n - wrong.count, deployFailure);
  out.counts.push(...requestCounts(tool, `deploy N=${n}`, n, afterDeploy, mark), {
    tool,
    label: `deploy N=${n}: peak builds at once (plan limit 12)`,
    value: afterDeploy.peakBuildsInFlight,
  });
  out.timings.push({
    tool,
    label: `vercel deploy N=${n}: wall (CLI start to exit)`,
    seconds: deployed.wallMs / 1000,
  });
  const report = readReport(deployReport);
  if (typeof report === 'string') out.notes.push(`vercel-fleet / ${tool} N=${n} deploy: ${report}`);
  else out.timings.push(...reportTimings(tool, `vercel deploy N=${n}`, report));
  if (deployFailure) {
    row('vercel rollback', undefined, undefined, 'skipped: the deploy before it failed');
    return;
  }

  // The rollback: Vercel's instant rollback of every site to the deployment it served before the run.
  const rollbackReport = path.join(dir, 'rollback.json');
  const mark2 = afterDeploy.requests;
  const cpu1 = standin.cpuSeconds();
  ctx.log(`${tool}: rollback of ${n} Vercel sites`);
  const rolled = await ctx.measure(
    {
      command: process.execPath,
      args: [
        ctx.cli,
        'rollback',
        '--to',
        'previous',
        '--config',
        configFile,
        '--yes',
        '--report-file',
        rollbackReport,
      ],
      cwd: repo.dir,
      env,
    },
    `vercel-${slug(tool)}-rollback`,
  );
  if (rolled.interrupted) throw new Interrupted();
  rolled.serverCpuSeconds = standin.cpuSeconds() - cpu1;
  rolled.hostProcesses = NaN;
  const afterRollback = await standin.state(names, mark2);
  const notBack = wrongSites(
    afterRollback,
    names,
    (name, p) =>
      !p
        ? 'unknown to the stand-in'
        : p.production !== before[name]
          ? `production is ${p.production}, expected ${before[name]}`
          : p.domains !== before[name]
            ? `its domain points at ${p.domains ?? 'several deployments'}`
            : undefined,
    'not back on their earlier deployment',
  );
  const rollbackFailure = [runFailure(ctx, rolled), notBack.text].filter(Boolean).join('\n  ') || undefined;
  if (rolled.timedOut) noteTimeout(ctx, tool);
  row('vercel rollback', rolled, n - notBack.count, rollbackFailure);
  out.counts.push(...requestCounts(tool, `rollback N=${n}`, n, afterRollback, mark2));
  out.timings.push({
    tool,
    label: `vercel rollback N=${n}: wall (CLI start to exit)`,
    seconds: rolled.wallMs / 1000,
  });
  const rb = readReport(rollbackReport);
  if (typeof rb === 'string') out.notes.push(`vercel-fleet / ${tool} N=${n} rollback: ${rb}`);
  else out.timings.push(...reportTimings(tool, `vercel rollback N=${n}`, rb));
}

/**
 * N Vercel sites (200 unless N is given) from an inventory CSV, deployed through the real CLI against the
 * Vercel stand-in the tests use, run as a child process: wall time, peak RSS of the CLI, the API requests it
 * made (the stand-in records them), then `rollback --to previous --yes` of all of them. Each site's end state is
 * read from the stand-in. Each concurrency variant gets a fresh stand-in.
 */
export const vercelFleet: Scenario = {
  name: 'vercel-fleet',
  description: `N Vercel sites from an inventory CSV (default 200), deployed with \`run --yes\` against the Vercel API stand-in (build ${SETTINGS.buildMs} ms, poll ${POLL_INTERVAL}, plan pro: 12 builds at once), then \`rollback --to previous --yes\`; each site's production deployment and domain read from the stand-in`,
  byDefault: false,
  defaultSizes: [200],
  usesFleet: false,
  async run(ctx) {
    const out: Outcome = { measurements: [], timings: [], counts: [], notes: [] };
    if (ctx.options.only === 'baseline') {
      out.notes.push('vercel-fleet: no baseline for Vercel; skipped with --only baseline');
      return out;
    }
    // The stand-in makes its HTTPS edge's certificate with openssl.
    await ensureDebianPackage('/usr/bin/openssl', 'openssl', "the Vercel stand-in's certificate", ctx.log);
    const entry = path.join(__dirname, '..', 'vercel', 'standin-child.js');
    for (const parallel of fleetParallels(ctx)) {
      const tool = homelabLabel(parallel);
      const at = ctx.timedOut.get(tool);
      if (at !== undefined && ctx.n >= at) {
        out.measurements.push({
          tool,
          family: 'homelab',
          what: 'vercel deploy',
          n: ctx.n,
          failure: `skipped: timed out at N=${at}`,
        });
        continue;
      }
      const logFile = path.join(ctx.logDir, `N${ctx.n}-vercel-standin-${slug(tool)}.log`);
      const standin = await startStandin(entry, ctx.root, SETTINGS, logFile);
      try {
        await deployAndRollBack(ctx, standin, parallel, out);
      } finally {
        await standin.stop();
      }
    }
    return out;
  },
};
