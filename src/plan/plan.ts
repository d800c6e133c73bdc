import type { Config, StageConfig, TargetConfig } from '../config/types';
import { selectTargets } from '../config/select';
import { nearest } from '../config/suggest';
import { upCommand } from '../targets/ssh/commands';
import { DeployError } from '../errors';
import { formatBytes, formatDuration } from '../util/duration';
import { splitWaves } from './waves';

export type PhaseKind = 'preflight' | 'secrets' | 'snapshot' | 'stage' | 'verify';

export interface PlannedPhase {
  name: string;
  kind: PhaseKind;
  hosts: string[];
  steps: string[];
  stage?: StageConfig;
  /** Hosts of earlier stages this run may have to roll back (rollback-all) without deploying to them. */
  rollbackScope?: string[];
  /** A fleet stage: the targets of each wave, in order (the first is the canary). */
  waves?: string[][];
}

export interface Plan {
  project: string;
  phases: PlannedPhase[];
  hosts: string[]; // every target the run connects to
  requested: string[];
  /** Targets the run deploys to (what the checkpoint counts). */
  deploying: string[];
}

export const FIXED_PHASES = ['preflight', 'secrets', 'snapshot'] as const;

/** Every phase name valid for this config, in pipeline order. */
export function phaseNames(config: Config): string[] {
  return [...FIXED_PHASES, ...config.stages.map((s) => s.name), 'verify'];
}

/** Parses the `phase` input: "all" or a comma-separated list of phase names. */
export function parsePhases(config: Config, spec: string): string[] {
  const all = phaseNames(config);
  const wanted = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (wanted.length === 0 || wanted.includes('all')) return all;
  const unknown = wanted.filter((w) => !all.includes(w));
  if (unknown.length) {
    const hints = unknown.map((u) => nearest(u, all)).filter(Boolean);
    throw new DeployError(
      'config',
      `phase ${unknown.map((u) => JSON.stringify(u)).join(', ')} is not a phase of this config${hints.length ? ` (did you mean ${hints.map((h) => JSON.stringify(h)).join(', ')}?)` : ''}; expected "all" or some of: ${all.join(', ')}`,
    );
  }
  return all.filter((p) => wanted.includes(p));
}

/**
 * The targets `--targets` names: names, globs (`site-*`) and label selectors (`region=eu`). A selector that picks
 * nothing is an error naming it, with the nearest name when it looks like a typo.
 */
export function selectRunTargets(config: Config, selectors: string[]): string[] {
  const all = Object.values(config.targets);
  const { names, unmatched } = selectTargets(selectors, all);
  if (unmatched.length) {
    const known = all.map((t) => t.name);
    throw new DeployError(
      'config',
      `--targets: ${unmatched
        .map((u) => {
          const near = /[*?=,]/.test(u) ? undefined : nearest(u, known);
          return /[*?=,]/.test(u)
            ? `${JSON.stringify(u)} matches no target`
            : `unknown target ${JSON.stringify(u)}${near ? ` (did you mean "${near}"?)` : ''}`;
        })
        .join(
          ', ',
        )}; ${config.file} has ${known.length > 12 ? `${known.length} targets (${known.slice(0, 12).join(', ')}, ...)` : known.join(', ')}`,
    );
  }
  return names;
}

/** Targets whose stage rolls out target by target, pre-flight included (not all-or-nothing up front). */
function perTargetFlow(stages: StageConfig[]): Set<string> {
  return new Set(stages.filter((s) => s.rollout?.preflight === 'per-target').flatMap((s) => s.targets));
}

/**
 * Turns config + requested phases + target filter into the ordered phases this run executes, with the targets
 * each touches. Pre-flight always runs for every target in scope: it verifies reachability and host keys, checks
 * disk and runtime, and takes the locks, which no deploy may skip. A fleet stage does pre-flight, secrets and
 * snapshot per target within its rollout, so those targets are not in the fixed phases.
 */
export function buildPlan(config: Config, phases: string[], targets?: string[]): Plan {
  const chosen = targets && targets.length ? new Set(selectRunTargets(config, targets)) : undefined;
  const inTargets = (h: string) => !chosen || chosen.has(h);
  const stages = config.stages
    .map((s) => ({ ...s, targets: s.targets.filter(inTargets) }))
    .filter((s) => s.targets.length > 0);
  const runStages = stages.filter((s) => phases.includes(s.name));
  const deployHosts = runStages.flatMap((s) => s.targets);
  const allStageHosts = stages.flatMap((s) => s.targets);
  const fleet = perTargetFlow(runStages);

  // Without stages to deploy, fixed phases and verify work on every target in scope.
  const scope = runStages.length > 0 ? deployHosts : allStageHosts;
  const rollbackScope = new Set<string>();
  for (const s of runStages) {
    if (s.onFailure !== 'rollback-all') continue;
    for (const earlier of stages.slice(0, stages.indexOf(s)))
      if (!phases.includes(earlier.name)) earlier.targets.forEach((h) => rollbackScope.add(h));
  }
  const verifying = phases.includes('verify');
  const hosts = [...new Set([...scope, ...rollbackScope, ...(verifying ? allStageHosts : [])])];
  const upFront = (names: string[]) => names.filter((n) => !fleet.has(n));

  const out: PlannedPhase[] = [];
  const checkHosts = upFront(hosts);
  if (checkHosts.length > 0 || fleet.size === 0)
    out.push({
      name: 'preflight',
      kind: 'preflight',
      hosts: checkHosts,
      steps: preflightSteps(config, checkHosts),
    });
  const wantsSecrets = config.secrets && (phases.includes('secrets') || runStages.length > 0);
  if (wantsSecrets && config.secrets && (upFront(scope).length > 0 || fleet.size === 0)) {
    out.push({
      name: 'secrets',
      kind: 'secrets',
      hosts: upFront(scope),
      steps: [`write shared/${config.secrets.file} (0600, atomic; keys: ${config.secrets.keys.join(', ')})`],
    });
  }
  if (
    (phases.includes('snapshot') || runStages.length > 0) &&
    (upFront(scope).length > 0 || fleet.size === 0)
  ) {
    out.push({
      name: 'snapshot',
      kind: 'snapshot',
      hosts: upFront(scope),
      steps: snapshotSteps(config, upFront(scope)),
    });
  }
  for (const s of runStages) {
    const steps: string[] = [];
    const waves = s.rollout ? splitWaves(s.targets, s.rollout) : undefined;
    if (s.rollout && waves) {
      const r = s.rollout;
      steps.push(
        `${s.rollout.implicit ? 'fleet (more than 50 targets): ' : ''}${waves.length} wave${waves.length === 1 ? '' : 's'} of ${waves.map((w) => w.length).join(', ')} targets; the first is the canary`,
        `failure budget: ${[r.maxFailPercentage !== undefined ? `${r.maxFailPercentage}% per wave and over the stage` : '', r.maxFail !== undefined ? `at most ${r.maxFail} failed` : ''].filter(Boolean).join(', ') || 'none'}; when passed: stop, ${r.onBudgetExceeded}, escalate`,
      );
      if (r.pauseMs) steps.push(`pause ${formatDuration(r.pauseMs)} between waves`);
      if (r.soakMs) steps.push(`soak: check each wave again after ${formatDuration(r.soakMs)}`);
      if (r.preflight === 'per-target')
        steps.push(
          'per target: pre-flight and lock, secrets, rollback point (a failure counts against the budget)',
        );
    }
    steps.push(...deploySteps(config, s));
    if (s.tests)
      steps.push(`tests on ${s.tests.on}: ${s.tests.run} (timeout ${formatDuration(s.tests.timeoutMs)})`);
    if (s.retry.attempts > 1) {
      steps.push(
        `retry: ${s.retry.attempts} attempts, backoff ${formatDuration(s.retry.delayMs)} ×${s.retry.factor} (on ${s.retry.on.join(', ')})`,
      );
    }
    steps.push(`on failure: ${s.rollout ? 'the failed target is rolled back' : s.onFailure}`);
    out.push({
      name: s.name,
      kind: 'stage',
      hosts: s.targets,
      steps,
      stage: s,
      rollbackScope: [...rollbackScope],
      waves,
    });
  }
  if (verifying) {
    out.push({
      name: 'verify',
      kind: 'verify',
      hosts: allStageHosts,
      steps: [
        'health checks of every stage on every target on the new release (fleet stages: the verify checks only)',
        `on failure: ${config.verify.onFailure}`,
      ],
    });
  }
  const rel = config.release;
  if (rel) {
    const deployed = runStages.map((s) => s.name);
    if (rel.sync && deployed.some((s) => rel.sync!.stages.length === 0 || rel.sync!.stages.includes(s)))
      out[0]?.steps.unshift(
        `up to date: the commit must contain the tip of ${rel.sync.remote}/${rel.sync.branch}${rel.sync.fetch ? ' (fetched first)' : ''}`,
      );
    const after = out.find((p) => p.name === rel.onStage);
    if (after && rel.tag)
      after.steps.push(
        `then tag ${rel.tag.name} (annotated; version from ${rel.tag.version.kind === 'input' ? '--release-version' : rel.tag.version.as})`,
      );
    if (after && rel.changelog) after.steps.push(`then append the release to ${rel.changelog.file}`);
  }
  return { project: config.project, phases: out, hosts, requested: phases, deploying: deployHosts };
}

function snapshotSteps(config: Config, names: string[]): string[] {
  const by = kindsOf(config, names);
  const steps = ['record what is live as the rollback point'];
  for (const h of (by.get('ssh') ?? []) as Extract<TargetConfig, { kind: 'ssh' }>[])
    if (h.snapshot)
      steps.push(
        `${h.name}: ${h.snapshot.provider === 'proxmox' ? `Proxmox snapshot of ${h.snapshot.node}/${h.snapshot.vmid}` : `snapshot: ${h.snapshot.create}`}`,
      );
  for (const t of (by.get('runner') ?? []) as Extract<TargetConfig, { kind: 'runner' }>[])
    if (t.snapshot) steps.push(`${t.name}: snapshot: ${t.snapshot}`);
  return steps;
}

function kindsOf(config: Config, names: string[]): Map<TargetConfig['kind'], TargetConfig[]> {
  const m = new Map<TargetConfig['kind'], TargetConfig[]>();
  for (const n of names) {
    const t = config.targets[n];
    if (t) (m.get(t.kind) ?? m.set(t.kind, []).get(t.kind)!).push(t);
  }
  return m;
}

function preflightSteps(config: Config, names: string[]): string[] {
  const by = kindsOf(config, names);
  const steps: string[] = [];
  const ssh = (by.get('ssh') ?? []) as Extract<TargetConfig, { kind: 'ssh' }>[];
  if (ssh.length)
    steps.push(
      'connect, verify host key',
      ...uniq(ssh.map((h) => `runtime: ${h.runtimeCheck}`)),
      ...uniq(ssh.map((h) => `free disk >= ${formatBytes(h.minFreeDiskBytes)}`)),
    );
  if (by.get('vercel')?.length) steps.push('Vercel: token, project and its production deployment');
  const runner = (by.get('runner') ?? []) as Extract<TargetConfig, { kind: 'runner' }>[];
  if (runner.length) steps.push(...uniq(runner.map((t) => `current: ${t.current}`)));
  steps.push('take deploy lock');
  return steps;
}

function deploySteps(config: Config, s: StageConfig): string[] {
  const by = kindsOf(config, s.targets);
  const steps: string[] = [];
  const ssh = (by.get('ssh') ?? []) as Extract<TargetConfig, { kind: 'ssh' }>[];
  if (ssh.length)
    steps.push(
      'upload release files (SFTP) → releases/<id>',
      'switch current → releases/<id>',
      ...uniq(ssh.map((h) => `up: ${upCommand(h.deploy, config.project)}`)),
    );
  const vercel = (by.get('vercel') ?? []) as Extract<TargetConfig, { kind: 'vercel' }>[];
  if (vercel.length)
    steps.push(
      ...uniq(
        vercel.map((v) =>
          v.promote === 'production'
            ? 'Vercel: create a production deployment without its domains, wait until READY, check it, promote'
            : 'Vercel: create a preview deployment, wait until READY, check it, promote to production',
        ),
      ),
    );
  const runner = (by.get('runner') ?? []) as Extract<TargetConfig, { kind: 'runner' }>[];
  if (runner.length) steps.push(...uniq(runner.map((t) => `up: ${t.up}`)));
  steps.push(...s.health.map((c) => `health: ${c.name}`));
  return steps;
}

function uniq(a: string[]): string[] {
  return [...new Set(a)];
}

/** Names for the plan's text: all of them for a few targets, a count and the first ones for a fleet. */
function names(list: string[]): string {
  return list.length <= 12 ? list.join(', ') : `${list.length} targets: ${list.slice(0, 8).join(', ')}, ...`;
}

export function renderPlan(plan: Plan): string {
  const lines = [
    `Plan for ${plan.project} (${plan.hosts.length} target${plan.hosts.length === 1 ? '' : 's'}):`,
  ];
  plan.phases.forEach((p, i) => {
    lines.push(`${i + 1}. ${p.name} [${names(p.hosts)}]`);
    for (const s of p.steps) lines.push(`     - ${s}`);
    if (p.waves)
      p.waves.forEach((w, j) => {
        if (j < 6 || j === p.waves!.length - 1)
          lines.push(`     wave ${j + 1}: ${w.length} target${w.length === 1 ? '' : 's'} [${names(w)}]`);
        else if (j === 6) lines.push(`     ...`);
      });
  });
  return lines.join('\n');
}
