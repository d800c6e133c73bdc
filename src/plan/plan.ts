import type { Config, HostConfig, StageConfig } from '../config/types';
import { upCommand } from '../targets/ssh/commands';
import { DeployError } from '../errors';
import { formatBytes, formatDuration } from '../util/duration';

export type PhaseKind = 'preflight' | 'secrets' | 'snapshot' | 'stage' | 'verify';

export interface PlannedPhase {
  name: string;
  kind: PhaseKind;
  hosts: string[];
  steps: string[];
  stage?: StageConfig;
  /** Hosts of earlier stages this run may have to roll back (rollback-all) without deploying to them. */
  rollbackScope?: string[];
}

export interface Plan {
  project: string;
  phases: PlannedPhase[];
  hosts: string[]; // every host the run connects to
  requested: string[];
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
    throw new DeployError(
      'config',
      `phase ${unknown.map((u) => JSON.stringify(u)).join(', ')} is not a phase of this config; expected "all" or some of: ${all.join(', ')}`,
    );
  }
  return all.filter((p) => wanted.includes(p));
}

/**
 * Turns config + requested phases + target filter into the ordered phases this run executes, with the hosts each
 * touches. Pre-flight always runs for every host in scope: it verifies host keys, checks disk and runtime, and
 * takes the locks, which no deploy may skip.
 */
export function buildPlan(config: Config, phases: string[], targets?: string[]): Plan {
  if (targets && targets.length) {
    const unknown = targets.filter((t) => !config.targets[t]);
    if (unknown.length)
      throw new DeployError(
        'config',
        `targets: unknown host ${unknown.join(', ')}; hosts are ${Object.keys(config.targets).join(', ')}`,
      );
  }
  const inTargets = (h: string) => !targets || targets.length === 0 || targets.includes(h);
  const stages = config.stages
    .map((s) => ({ ...s, targets: s.targets.filter(inTargets) }))
    .filter((s) => s.targets.length > 0);
  const runStages = stages.filter((s) => phases.includes(s.name));
  const deployHosts = runStages.flatMap((s) => s.targets);
  const allStageHosts = stages.flatMap((s) => s.targets);

  // Without stages to deploy, fixed phases and verify work on every host in the targets.
  const scope = runStages.length > 0 ? deployHosts : allStageHosts;
  const rollbackScope = new Set<string>();
  for (const s of runStages) {
    if (s.onFailure !== 'rollback-all') continue;
    for (const earlier of stages.slice(0, stages.indexOf(s)))
      if (!phases.includes(earlier.name)) earlier.targets.forEach((h) => rollbackScope.add(h));
  }
  const verifying = phases.includes('verify');
  const hosts = [...new Set([...scope, ...rollbackScope, ...(verifying ? allStageHosts : [])])];

  const out: PlannedPhase[] = [];
  const checkHosts = hosts;
  out.push({
    name: 'preflight',
    kind: 'preflight',
    hosts: checkHosts,
    steps: [
      'connect, verify host key',
      ...uniq(sshOf(config, checkHosts).map((h) => `runtime: ${h.runtimeCheck}`)),
      ...uniq(sshOf(config, checkHosts).map((h) => `free disk >= ${formatBytes(h.minFreeDiskBytes)}`)),
      'take deploy lock',
    ],
  });
  const wantsSecrets = config.secrets && (phases.includes('secrets') || runStages.length > 0);
  if (wantsSecrets && config.secrets) {
    out.push({
      name: 'secrets',
      kind: 'secrets',
      hosts: scope,
      steps: [`write shared/${config.secrets.file} (0600, atomic; keys: ${config.secrets.keys.join(', ')})`],
    });
  }
  if (phases.includes('snapshot') || runStages.length > 0) {
    out.push({
      name: 'snapshot',
      kind: 'snapshot',
      hosts: scope,
      steps: ['record current release as rollback point'],
    });
  }
  for (const s of runStages) {
    const steps = [
      'upload release files (SFTP) → releases/<id>',
      'switch current → releases/<id>',
      ...uniq(sshOf(config, s.targets).map((h) => `up: ${upCommand(h.deploy, config.project)}`)),
      ...s.health.map((c) => `health: ${c.name}`),
    ];
    if (s.tests)
      steps.push(`tests on ${s.tests.on}: ${s.tests.run} (timeout ${formatDuration(s.tests.timeoutMs)})`);
    if (s.retry.attempts > 1) {
      steps.push(
        `retry: ${s.retry.attempts} attempts, backoff ${formatDuration(s.retry.delayMs)} ×${s.retry.factor} (on ${s.retry.on.join(', ')})`,
      );
    }
    steps.push(`on failure: ${s.onFailure}`);
    out.push({
      name: s.name,
      kind: 'stage',
      hosts: s.targets,
      steps,
      stage: s,
      rollbackScope: [...rollbackScope],
    });
  }
  if (verifying) {
    out.push({
      name: 'verify',
      kind: 'verify',
      hosts: allStageHosts,
      steps: [
        'health checks of every stage on every host on the new release',
        `on failure: ${config.verify.onFailure}`,
      ],
    });
  }
  return { project: config.project, phases: out, hosts, requested: phases };
}

/** The SSH hosts among `names`. */
function sshOf(config: Config, names: string[]): HostConfig[] {
  return names.flatMap((n) => (config.hosts[n] ? [config.hosts[n]] : []));
}

function uniq(a: string[]): string[] {
  return [...new Set(a)];
}

export function renderPlan(plan: Plan): string {
  const lines = [
    `Plan for ${plan.project} (${plan.hosts.length} host${plan.hosts.length === 1 ? '' : 's'}):`,
  ];
  plan.phases.forEach((p, i) => {
    lines.push(`${i + 1}. ${p.name} [${p.hosts.join(', ')}]`);
    for (const s of p.steps) lines.push(`     - ${s}`);
  });
  return lines.join('\n');
}
