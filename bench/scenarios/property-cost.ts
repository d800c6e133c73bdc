import { PROPERTIES } from '../baseline/job';
import type { Table } from '../report/table';
import { BASELINE_CONCURRENCY, BASELINE_LABEL } from '../tools/baseline';
import { homelabLabel } from '../tools/homelab';
import type { DeployTool } from '../tools/tool';
import { timedRedeploy } from './deploy-run';
import type { Measurement, Scenario, ScenarioContext } from './types';

/**
 * The open question "which safety property costs what": the baseline's redeploy, plain, then with one of
 * homelab-deploy's safety properties added at a time (bench/baseline/steps.ts, deploy.ts), then with all of them,
 * then homelab-deploy itself, each on the same fleet as scenario redeploy runs a tool. What the product costs
 * beyond the baseline with every property is its own overhead. The plain baseline runs once more at the end, so
 * the table shows how far two runs of the same thing differ on this machine.
 */
export const propertyCost: Scenario = {
  name: 'property-cost',
  description:
    "the redeploy of scenario redeploy with the ssh2 baseline plain, with each of homelab-deploy's safety properties added alone, with all of them, and homelab-deploy itself; cost of each property vs the plain baseline",
  byDefault: false,
  defaultSizes: [100, 500],
  async run(ctx) {
    const rows: Row[] = [];
    for (const v of variants(ctx)) rows.push({ ...v, m: await timedRedeploy(ctx, v.tool, 'property-cost') });
    return {
      measurements: rows.map((r) => r.m),
      timings: [],
      tables: [{ title: `Safety property cost, N = ${ctx.n}`, table: propertyCostTable(rows) }],
      notes: costNotes(ctx, rows),
    };
  },
};

interface Variant {
  /** how the cost table names the row */
  label: string;
  kind: 'plain' | 'property' | 'all' | 'all-but-verify' | 'homelab' | 'plain-again';
  tool: DeployTool;
}

interface Row extends Variant {
  m: Measurement;
}

const ALL_LABEL = `all ${PROPERTIES.length} properties`;
/**
 * A stage rolled out as a fleet (above 50 targets, as here at N >= 100) has each target's health checked in its
 * wave, and verify checks it again only for `verify.health`, which the bench's config has none of: there the
 * product's work is every property but verify, and this row is what it compares with.
 */
const BUT_VERIFY = PROPERTIES.filter((p) => p !== 'verify');
const BUT_VERIFY_LABEL = 'all but verify';

/**
 * homelab-deploy at the baseline's concurrency unless --parallel names others: a difference of width is not a
 * safety property, and would otherwise count as the tool's own overhead.
 */
function homelabParallels(ctx: ScenarioContext): (number | undefined)[] {
  return ctx.options.parallelGiven ? ctx.options.parallel : [BASELINE_CONCURRENCY];
}

/** The runs in the order of the table: plain, + each property, all, homelab-deploy, plain again. */
function variants(ctx: ScenarioContext): Variant[] {
  const baseline = ctx.options.only !== 'homelab';
  const list: Variant[] = [];
  if (baseline) {
    list.push({ label: 'plain baseline', kind: 'plain', tool: ctx.baselineWith([]) });
    for (const p of PROPERTIES) list.push({ label: `+ ${p}`, kind: 'property', tool: ctx.baselineWith([p]) });
    list.push({
      label: ALL_LABEL,
      kind: 'all',
      tool: ctx.baselineWith([...PROPERTIES], `${BASELINE_LABEL} + ${ALL_LABEL}`),
    });
    list.push({
      label: BUT_VERIFY_LABEL,
      kind: 'all-but-verify',
      tool: ctx.baselineWith(BUT_VERIFY, `${BASELINE_LABEL} + ${BUT_VERIFY_LABEL}`),
    });
  }
  if (ctx.options.only !== 'baseline')
    for (const parallel of homelabParallels(ctx))
      // Past the checkpoint (50 targets) a run needs --yes; the fleet scenarios pass it at every size too.
      list.push({
        label: homelabLabel(parallel),
        kind: 'homelab',
        tool: ctx.homelab({ parallel, extraArgs: ['--yes'] }),
      });
  if (baseline)
    list.push({
      label: 'plain baseline, again',
      kind: 'plain-again',
      tool: ctx.baselineWith([], `${BASELINE_LABEL} (again)`),
    });
  return list;
}

const dash = '–';

const fixed = (v: number | undefined, digits: number) =>
  v === undefined || !Number.isFinite(v) ? dash : v.toFixed(digits);

const signed = (v: number | undefined, digits: number, unit = '') =>
  v === undefined || !Number.isFinite(v) ? dash : `${v >= 0 ? '+' : ''}${v.toFixed(digits)}${unit}`;

/** Wall seconds of a run that finished with every host right; undefined otherwise (no delta is given for it). */
function wallOf(m: Measurement | undefined): number | undefined {
  return m?.figures && !m.failure ? m.figures.wallMs / 1000 : undefined;
}

const procsOf = (m: Measurement | undefined) =>
  m?.figures && !m.failure ? m.figures.hostProcesses / m.n : undefined;

export function propertyCostTable(rows: Row[]): Table {
  const plain = rows.find((r) => r.kind === 'plain')?.m;
  const base = wallOf(plain);
  const baseProcs = procsOf(plain);
  return {
    header: [
      'variant',
      'wall s',
      'Δ wall s',
      'Δ wall %',
      'client CPU s',
      'server CPU s',
      'host procs/host',
      'Δ procs/host',
      'load',
      'verified',
    ],
    right: [false, true, true, true, true, true, true, true, true, false],
    rows: rows.map(({ label, kind, m }) => {
      const f = m.figures;
      const wall = wallOf(m);
      const delta = kind === 'plain' || wall === undefined || base === undefined ? undefined : wall - base;
      const procs = procsOf(m);
      const dProcs =
        kind === 'plain' || procs === undefined || baseProcs === undefined ? undefined : procs - baseProcs;
      return [
        label,
        fixed(f && f.wallMs / 1000, 2),
        signed(delta, 2),
        signed(delta === undefined || !base ? undefined : (100 * delta) / base, 1, ' %'),
        fixed(f?.clientCpuSeconds, 2),
        fixed(f?.serverCpuSeconds, 2),
        fixed(f && f.hostProcesses / m.n, 1),
        signed(dProcs, 1),
        fixed(f?.load1, 1),
        `${m.failure ? 'FAILED ' : ''}${m.verifiedHosts === undefined ? '' : `${m.verifiedHosts}/${m.n}`}`.trim(),
      ];
    }),
  };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * What the difference between homelab-deploy and the baseline with every property says; `noise` is the spread of
 * the two plain runs (undefined when the second did not verify).
 */
function homelabReading(beyondAll: number, noise: number | undefined): string {
  if (noise !== undefined && Math.abs(beyondAll) <= noise)
    return 'within the spread of the two plain runs: no overhead of its own can be told apart at this N';
  if (beyondAll >= 0) return "what is left is the tool's own overhead";
  // Each baseline step is a channel of its own; the product runs one script per phase, so it pays a channel's
  // setup and the remote-timeout wrapper fewer times for the same work.
  return "the same properties done the baseline's way (one channel per step) cost more than the product, which does the same work in fewer commands: no overhead of its own is left to attribute at this N";
}

/**
 * The figures the table leaves to the reader: the single costs added up next to all properties together (they
 * overlap: remote-timeout wraps the commands the others add), what homelab-deploy costs beyond all of them, and
 * the spread between the two plain runs, below which a delta is noise.
 */
export function costNotes(ctx: ScenarioContext, rows: Row[]): string[] {
  const at = `property-cost N=${ctx.n}`;
  const plain = rows.find((r) => r.kind === 'plain');
  if (!plain) return []; // --only homelab: nothing to compare with
  const base = wallOf(plain.m);
  if (base === undefined) return [`${at}: the plain baseline did not verify: no deltas`];
  const pct = (s: number) =>
    `${s >= 0 ? '+' : ''}${s.toFixed(2)} s (${s >= 0 ? '+' : ''}${((100 * s) / base).toFixed(1)} % of plain)`;
  const notes: string[] = [];
  const again = wallOf(rows.find((r) => r.kind === 'plain-again')?.m);
  const noise = again === undefined ? undefined : Math.abs(again - base);
  if (again !== undefined)
    notes.push(
      `${at}: the plain baseline ran twice, ${base.toFixed(2)} s and ${again.toFixed(2)} s: a wall-time delta within ${noise?.toFixed(2)} s is noise; Δ procs/host is exact`,
    );
  const singles = rows.filter((r) => r.kind === 'property').map((r) => wallOf(r.m));
  const all = wallOf(rows.find((r) => r.kind === 'all')?.m);
  if (singles.length && singles.every((s) => s !== undefined))
    notes.push(
      `${at}: the ${singles.length} single-property deltas add up to ${pct(sum(singles.map((s) => (s as number) - base)))}${all === undefined ? '' : `; all together cost ${pct(all - base)}`}`,
    );
  // Which baseline does the product's work at this N: without verify where its stage is a fleet (see BUT_VERIFY).
  const fleet = ctx.n > 50;
  const same = wallOf(rows.find((r) => r.kind === (fleet ? 'all-but-verify' : 'all'))?.m);
  const sameLabel = fleet ? BUT_VERIFY_LABEL : ALL_LABEL;
  for (const r of rows.filter((x) => x.kind === 'homelab')) {
    const wall = wallOf(r.m);
    if (wall !== undefined && same !== undefined)
      notes.push(
        `${at}: ${r.label} against the plain baseline ${pct(wall - base)}, against the baseline with ${sameLabel} (the work the product does at this N${fleet ? ': a fleet stage, whose verify re-checks only verify.health' : ''}) ${pct(wall - same)}, ratio ${(wall / same).toFixed(2)}x: ${homelabReading(wall - same, noise)}`,
      );
  }
  notes.push(
    `${at}: homelab-deploy ran with parallel ${homelabParallels(ctx)
      .map((p) => p ?? 'default')
      .join(', ')} (the baseline deploys ${BASELINE_CONCURRENCY} hosts at a time)`,
  );
  return notes;
}
