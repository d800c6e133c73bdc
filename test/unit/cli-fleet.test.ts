import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { completeShardMerge, overallBudget } from '../../src/cli/merge-fleet';
import { exitCodeOf } from '../../src/cli/outcome';
import { planNotes } from '../../src/cli/plan-notes';
import { splitSelectors } from '../../src/cli/selectors';
import { loadConfig } from '../../src/config/load';
import { prepare } from '../../src/engine';
import type { HostFinalState, HostPhaseReport, Report } from '../../src/report/types';
import { MINIMAL, writeConfig } from '../fixtures/config';

/** A fleet: 120 SSH sites in waves (half of them in region eu), 30 Vercel shops on the Hobby plan. */
function fleetYaml(window = 'window: { days: [sat], from: "02:00", to: "04:00", tz: UTC }\n'): string {
  const sites = Array.from(
    { length: 120 },
    (_, i) =>
      `  site-${String(i).padStart(3, '0')}: { address: 192.0.2.${(i % 250) + 1}, labels: { region: ${i % 2 ? 'eu' : 'us'} } }`,
  ).join('\n');
  const shops = Array.from(
    { length: 30 },
    (_, i) => `  shop-${String(i).padStart(2, '0')}: { kind: vercel, project: shop-${i}, source: files }`,
  ).join('\n');
  return `version: 1
project: fleet
defaults:
  ssh: { user: deploy, key: ~/.ssh/id_ed25519, known_hosts: known_hosts }
  vercel: { team: team_acme, token_env: VERCEL_TOKEN, plan: hobby }
${window}hosts:
${sites}
targets:
${shops}
stages:
  - name: sites
    hosts: ["site-*"]
    rollout: { waves: [1, "10%", "100%"], max_fail_percentage: 5 }
  - name: shops
    hosts: ["shop-*"]
    parallel: 4
`;
}

function io(input?: { isTTY: boolean; answer?: string }) {
  let out = '';
  let err = '';
  const stdin = new EventEmitter() as EventEmitter & { isTTY: boolean; resume(): void; pause(): void };
  stdin.isTTY = input?.isTTY ?? false;
  stdin.resume = () => {
    if (input?.answer !== undefined) setImmediate(() => stdin.emit('data', Buffer.from(input.answer ?? '')));
  };
  stdin.pause = () => undefined;
  return {
    io: {
      out: { write: (t: string) => (out += t) },
      err: { write: (t: string) => (err += t) },
      input: stdin,
      env: { ...process.env, GITHUB_ACTIONS: undefined },
    },
    get out() {
      return out;
    },
    get err() {
      return err;
    },
  };
}

describe('plan for a fleet', () => {
  const file = writeConfig(fleetYaml());

  it('says how many targets each wave touches, the checkpoint, the window and the Vercel cost', () => {
    const { config, plan } = prepare(file, 'all');
    const saturday3am = new Date('2026-12-05T03:00:00Z');
    const friday = new Date('2026-12-04T12:00:00Z');
    const closed = planNotes(config, plan, friday);
    expect(closed).toEqual([
      'Checkpoint: this run deploys to 150 targets, more than checkpoint.above (50): it needs a confirmation (run --yes, a "y" at the prompt, or the bulk workflow\'s approval)',
      '  sites: wave 1 (canary) touches 1, then 12, 107',
      'Deploy window sat 02:00-04:00 UTC: CLOSED now; it opens next at 2026-12-05T02:00:00.000Z. A run refuses outside it (--wait-window waits, --ignore-window deploys anyway, audited)',
      'Vercel cost, shops (team team_acme): 30 deployments for 30 projects, 30% of the daily quota (100, plan hobby); about 30m0s at 1 build at once (parallel 4, assuming 60s per deployment)',
      "  note: concurrency 4 is above the plan's 1 concurrent builds: builds wait for a slot",
    ]);
    expect(planNotes(config, plan, saturday3am)[2]).toBe('Deploy window sat 02:00-04:00 UTC: open now');
  });

  it('the CLI prints the notes under the plan, and --targets narrows the count', async () => {
    const r = io();
    expect(await main(['plan', '--config', file, '--targets', 'region=eu', '--phase', 'sites'], r.io)).toBe(
      0,
    );
    expect(r.out).toContain('     wave 1: 1 target [site-001]');
    expect(r.out).toContain(
      'Checkpoint: this run deploys to 60 targets, more than checkpoint.above (50): it needs a confirmation',
    );
    expect(r.out).toContain('  sites: wave 1 (canary) touches 1, then 6, 53');
    expect(r.out).not.toContain('Vercel cost');
  });

  it('a homelab plan stays as it was: no checkpoint, no window, no cost lines', async () => {
    const r = io();
    expect(await main(['plan', '--config', writeConfig(MINIMAL)], r.io)).toBe(0);
    expect(r.out).not.toMatch(/Checkpoint|Deploy window|Vercel cost/);
  });

  it('plan --json carries the Vercel cost on the stage', async () => {
    const r = io();
    expect(await main(['plan', '--config', file, '--json'], r.io)).toBe(0);
    const phases = JSON.parse(r.out) as { name: string; waves?: string[][]; vercelCost?: unknown[] }[];
    expect(phases.find((p) => p.name === 'sites')?.waves?.map((w) => w.length)).toEqual([1, 12, 107]);
    expect(phases.find((p) => p.name === 'shops')?.vercelCost).toEqual([
      expect.objectContaining({
        stage: 'shops',
        team: 'team_acme',
        plan: 'hobby',
        estimate: expect.objectContaining({ deployments: 30, quotaShare: 0.3, parallelBuilds: 1 }),
      }),
    ]);
  });

  it('plan --shards: the canary wave is shard 0, the rest is split into N shards that cover every target once', async () => {
    const r = io();
    expect(await main(['plan', '--config', file, '--shards', '4'], r.io)).toBe(0);
    const { include } = JSON.parse(r.out) as {
      include: { shard: number; targets: string; hosts: number; canary?: boolean }[];
    };
    expect(include[0]).toEqual({ shard: 0, targets: 'site-000', hosts: 1, canary: true });
    expect(include.slice(1).map((s) => [s.shard, s.hosts])).toEqual([
      [1, 38],
      [2, 37],
      [3, 37],
      [4, 37],
    ]);
    const all = include.flatMap((s) => s.targets.split(','));
    expect(all).toHaveLength(150);
    expect(new Set(all).size).toBe(150);
    expect(include.every((s) => s.canary || !s.targets.split(',').includes('site-000'))).toBe(true);
    // Each shard's list is what --targets takes back.
    const shard = io();
    expect(await main(['plan', '--config', file, '--targets', include[2].targets, '--json'], shard.io)).toBe(
      0,
    );
  });
});

describe('the checkpoint on the command line', () => {
  const file = writeConfig(MINIMAL.replace('hosts:\n', 'checkpoint: { above: 2 }\nhosts:\n'));

  it('on a terminal it asks "deploy to N targets? [y/N]" on stderr; "y" goes on, anything else stops', async () => {
    const yes = io({ isTTY: true, answer: 'y\n' });
    const code = await main(['run', '--config', file, '--ref', 'no-such-branch'], yes.io);
    expect(yes.err.startsWith('deploy to 3 targets? [y/N] ')).toBe(true);
    // Confirmed: the run goes on to the engine, which stops at the ref (the config is not in a git repository),
    // before any host (192.0.2.x) is contacted.
    expect(yes.err).toBe(
      `deploy to 3 targets? [y/N] error [config]: ${path.dirname(file)} is not inside a git repository; homelab-deploy deploys committed files\n`,
    );
    expect(code).toBe(2);

    const no = io({ isTTY: true, answer: 'n\n' });
    expect(await main(['run', '--config', file], no.io)).toBe(1);
    expect(no.err).toBe('deploy to 3 targets? [y/N] not confirmed (answer "n"); nothing was touched\n');
    const eof = io({ isTTY: true });
    const pending = main(['run', '--config', file], eof.io);
    setImmediate(() => (eof.io.input as EventEmitter).emit('end'));
    expect(await pending).toBe(1);
    expect(eof.err).toContain('not confirmed (answer ""); nothing was touched');
  });

  it('--yes skips the question, and rollback asks the same way', async () => {
    const r = io({ isTTY: true, answer: 'n\n' });
    expect(await main(['run', '--config', file, '--yes'], r.io)).toBe(2);
    expect(r.err).toMatch(/^error \[config\]: .* is not inside a git repository/);
    const rb = io({ isTTY: false });
    expect(await main(['rollback', '--config', file, '--to', 'previous'], rb.io)).toBe(2);
    expect(rb.err).toBe(
      'rollback: this would touch 3 targets, more than checkpoint.above (2), and there is no terminal to ask: pass --yes to confirm; nothing was touched\n',
    );
    const asked = io({ isTTY: true, answer: 'no\n' });
    expect(await main(['rollback', '--config', file, '--to', 'previous'], asked.io)).toBe(1);
    expect(asked.err).toBe(
      'roll back 3 targets to previous? [y/N] not confirmed (answer "no"); nothing was touched\n',
    );
  });
});

describe('exit codes', () => {
  it('3 when a target needs a human, whatever the status; 1 for failures; 0 otherwise', () => {
    expect(exitCodeOf({ status: 'success' })).toBe(0);
    expect(exitCodeOf({ status: 'partial_success' })).toBe(0);
    for (const s of ['failed', 'aborted', 'rolled_back'] as const) expect(exitCodeOf({ status: s })).toBe(1);
    expect(exitCodeOf({ status: 'failed', needsAttention: ['rtx1080'] })).toBe(3);
    expect(exitCodeOf({ status: 'partial_success', needsAttention: ['vps'] })).toBe(3);
    expect(exitCodeOf({ status: 'failed', needsAttention: [] })).toBe(1);
  });
});

describe('--targets selectors', () => {
  it.each([
    ['web-1,web-2', ['web-1', 'web-2']],
    ['site-*, db-1', ['site-*', 'db-1']],
    ['region=eu', ['region=eu']],
    ['region=eu,tier=web', ['region=eu,tier=web']],
    ['region=eu,tier=web,db-1,tier!=canary', ['region=eu,tier=web', 'db-1', 'tier!=canary']],
    [' , ', []],
  ])('%j', (value, selectors) => {
    expect(splitSelectors(value)).toEqual(selectors);
  });
});

describe('merging the shards of a fleet', () => {
  const config = loadConfig(writeConfig(fleetYaml('')));
  const host = (name: string, ok: boolean, cls = 'health-failed'): HostPhaseReport => ({
    host: name,
    ok,
    durationMs: 1,
    attempts: [],
    steps: [],
    health: [],
    error: ok ? undefined : { class: cls as 'health-failed', message: 'x' },
  });
  const final = (name: string, state: HostFinalState['state']): HostFinalState => ({
    host: name,
    stage: 'sites',
    before: 'a',
    after: state === 'new' ? 'b' : 'a',
    state,
  });
  const shard = (names: string[], failing: string[]): Report => ({
    schema: 1,
    project: 'fleet',
    status: failing.length ? 'partial_success' : 'success',
    phase: 'sites',
    systemsDeployed: names.filter((n) => !failing.includes(n)),
    durationSeconds: 1,
    startedAt: '2026-12-05T02:00:00Z',
    finishedAt: '2026-12-05T02:01:00Z',
    release: { id: 'b', commit: 'c'.repeat(40), ref: 'main' },
    run: {},
    phasesRequested: ['all'],
    phases: [
      {
        name: 'sites',
        kind: 'stage',
        status: failing.length ? 'failed' : 'ok',
        startedAt: '2026-12-05T02:00:00Z',
        durationMs: 1,
        hosts: names.map((n) =>
          host(n, !failing.includes(n), n.endsWith('7') ? 'unreachable' : 'health-failed'),
        ),
      },
    ],
    hosts: names.map((n) => final(n, failing.includes(n) ? 'previous' : 'new')),
    audit: [],
    waves: [
      {
        stage: 'sites',
        index: 1,
        targets: names,
        ok: names.length - failing.length,
        failed: failing.length,
        notStarted: 0,
        startedAt: '2026-12-05T02:00:00Z',
        durationMs: 1,
      },
    ],
  });
  const names = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => `site-${String(from + i).padStart(3, '0')}`);

  it('each shard under its budget, the fleet under it too: no escalation, waves kept', () => {
    const reports = [shard(names(0, 60), ['site-001']), shard(names(60, 60), ['site-061'])];
    const merged = completeShardMerge(
      { ...reports[0], hosts: reports.flatMap((r) => r.hosts), phases: reports[0].phases, waves: undefined },
      reports,
      config,
    );
    expect(merged.escalation).toBeUndefined();
    expect(merged.waves).toHaveLength(2);
  });

  it('shards each within their slice but over the budget as a fleet: an escalation naming the count and the classes', () => {
    // Each shard stays at 3 failed, under max_fail 4 for its slice; the fleet has 6.
    const counted = loadConfig(writeConfig(fleetYaml('').replace('max_fail_percentage: 5', 'max_fail: 4')));
    const reports = [
      shard(names(0, 60), ['site-001', 'site-002', 'site-007']),
      shard(names(60, 60), ['site-061', 'site-062', 'site-067']),
    ];
    const mergedHosts = reports.flatMap((r) => r.hosts);
    const merged: Report = {
      ...reports[0],
      waves: undefined,
      hosts: mergedHosts,
      phases: [{ ...reports[0].phases[0], hosts: reports.flatMap((r) => r.phases[0].hosts) }],
    };
    expect(overallBudget(merged, counted)).toEqual({
      stage: 'sites',
      wave: 0,
      reason: '6 of 120 targets failed across all shards (5.0%), more than max_fail 4 for the whole fleet',
      rate: 0.05,
      classes: { 'health-failed': 4, unreachable: 2 },
      firstFailing: ['site-001', 'site-002', 'site-007', 'site-061', 'site-062', 'site-067'],
    });
    expect(completeShardMerge(merged, reports, counted).escalation?.wave).toBe(1);
    // Without the config only the shards' own escalations count.
    expect(completeShardMerge(merged, reports).escalation).toBeUndefined();
  });

  it('targets of a shard that never reported need a human', () => {
    const reports = [shard(names(0, 2), [])];
    const merged = completeShardMerge(
      { ...reports[0], hosts: [...reports[0].hosts, final('site-002', 'unknown')] },
      reports,
    );
    expect(merged.needsAttention).toEqual(['site-002']);
  });
});
