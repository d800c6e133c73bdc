import * as os from 'node:os';
import * as path from 'node:path';
import type { ConfigIssue } from './errors';
import type { ConfigInput, StageInput, TargetInput } from './schema';
import { isPattern, selectTargets, type Selectable } from './select';
import type {
  RolloutSettings,
  RunnerTargetConfig,
  StateStoreSettings,
  TargetConfig,
  VercelTargetConfig,
  WaveSize,
  WindowSettings,
} from './types';

/** Defaults for targets of other kinds than SSH hosts, and for fleets. */
export const TARGET_DEFAULTS = {
  runnerTimeoutMs: 30 * 60_000,
  vercelApi: 'https://api.vercel.com',
  vercelTokenEnv: 'VERCEL_TOKEN',
  vercelBuildTimeoutMs: 15 * 60_000,
  vercelPollMs: 2_000,
  /** Vercel's documented plan limits (concurrent builds, deployments created per day). */
  vercelPlans: {
    hobby: { concurrentBuilds: 1, deploymentsPerDay: 100 },
    pro: { concurrentBuilds: 12, deploymentsPerDay: 6000 },
    enterprise: { concurrentBuilds: 12, deploymentsPerDay: 6000 },
  },
  /** A stage with more targets than this rolls out as a fleet even without a `rollout`. */
  fleetAbove: 50,
  checkpointAbove: 50,
  fleetMaxFailPercentage: 5,
} as const;

/**
 * The default state directory: outside the checkout, which actions/checkout cleans between jobs, and stable
 * across runs of the same user on a self-hosted runner.
 */
export function defaultStateDir(project: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'homelab-deploy', project);
}

const strings = (r: Record<string, string | number | boolean> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, String(v)]));

export function resolveLabels(
  defaults: ConfigInput['defaults'],
  own: Record<string, string | number | boolean> | undefined,
): Record<string, string> {
  return { ...strings(defaults?.labels), ...strings(own) };
}

function stateOf(own: { path: string } | undefined, input: ConfigInput, dir: string): StateStoreSettings {
  const p = own?.path ?? input.state?.path;
  return { kind: 'dir', path: p ? path.resolve(dir, p) : defaultStateDir(input.project) };
}

export function resolveTarget(name: string, t: TargetInput, input: ConfigInput, dir: string): TargetConfig {
  const base = {
    name,
    stageTag: t.stage,
    labels: resolveLabels(input.defaults, t.labels),
    vars: strings(t.vars),
  };
  if (t.kind === 'runner') {
    const d = input.defaults?.runner ?? {};
    const r: RunnerTargetConfig = {
      ...base,
      kind: 'runner',
      current: t.current,
      up: t.up,
      rollback: t.rollback,
      snapshot: t.snapshot,
      down: t.down,
      cwd: path.resolve(dir, t.cwd ?? d.cwd ?? '.'),
      timeoutMs: t.timeout ?? d.timeout ?? TARGET_DEFAULTS.runnerTimeoutMs,
      state: stateOf(t.state ?? d.state, input, dir),
    };
    return r;
  }
  const d = input.defaults?.vercel ?? {};
  const plan = TARGET_DEFAULTS.vercelPlans[d.plan ?? 'pro'];
  const source = t.source ?? d.source ?? 'git';
  const v: VercelTargetConfig = {
    ...base,
    kind: 'vercel',
    project: t.project,
    team: t.team ?? d.team,
    tokenEnv: t.token_env ?? d.token_env ?? TARGET_DEFAULTS.vercelTokenEnv,
    apiUrl: (t.api ?? d.api ?? TARGET_DEFAULTS.vercelApi).replace(/\/$/, ''),
    promote: t.promote ?? d.promote ?? 'production',
    source:
      source === 'files'
        ? { type: 'files' }
        : {
            type: 'git',
            provider: t.git_provider ?? d.git_provider ?? 'github',
            repo: t.repo ?? d.repo ?? '',
          },
    domains: t.domains ?? [],
    buildTimeoutMs: t.build_timeout ?? d.build_timeout ?? TARGET_DEFAULTS.vercelBuildTimeoutMs,
    pollIntervalMs: t.poll_interval ?? d.poll_interval ?? TARGET_DEFAULTS.vercelPollMs,
    state: stateOf(t.state ?? d.state, input, dir),
    limits: {
      plan: d.plan ?? 'pro',
      concurrentBuilds: d.concurrent_builds ?? plan.concurrentBuilds,
      deploymentsPerDay: d.deployments_per_day ?? plan.deploymentsPerDay,
    },
  };
  return v;
}

/** Issues with a target of another kind that the schema cannot see. */
export function targetIssues(name: string, t: TargetConfig): ConfigIssue[] {
  if (t.kind === 'vercel' && t.source.type === 'git' && !t.source.repo)
    return [
      {
        path: `targets.${name}.repo`,
        message:
          'a Vercel target deploying from git needs "repo" (owner/repo or the numeric id), here or in defaults.vercel.repo; or set source: files',
      },
    ];
  return [];
}

/** A stage's `hosts:` selectors, resolved against every target; selectors that pick nothing are errors. */
export function stageTargets(
  s: StageInput,
  index: number,
  all: Selectable[],
  issues: ConfigIssue[],
): string[] {
  const { names, unmatched } = selectTargets(s.hosts, all);
  // Unknown plain names are reported by the cross-reference check, with a suggestion.
  for (const u of unmatched.filter(isPattern))
    issues.push({
      path: `stages.${index}.hosts.${s.hosts.indexOf(u)}`,
      message: `selector ${JSON.stringify(u)} matches no target`,
    });
  return names;
}

/**
 * A target belongs to one stage: the failure rules and the report are per stage. Targets both stages name
 * plainly were reported by the cross-reference check already; this finds those a selector put in a second stage.
 */
export function overlapIssues(
  stages: { name: string; targets: string[] }[],
  input: ConfigInput,
): ConfigIssue[] {
  const stageOf = new Map<string, { name: string; plain: boolean }>();
  const issues: ConfigIssue[] = [];
  stages.forEach((s, i) => {
    const plain = new Set(input.stages?.[i]?.hosts.filter((h) => !isPattern(h)) ?? s.targets);
    for (const t of s.targets) {
      const other = stageOf.get(t);
      if (other === undefined) stageOf.set(t, { name: s.name, plain: plain.has(t) });
      else if (other.name !== s.name && !(other.plain && plain.has(t)))
        issues.push({
          path: `stages.${i}.hosts`,
          message: `target "${t}" is already in stage "${other.name}"; a target belongs to one stage`,
        });
    }
  });
  return issues;
}

function wave(v: number | string): WaveSize {
  return typeof v === 'number' ? { count: v } : { percent: Number(v.slice(0, -1)) };
}

/**
 * A stage's rollout. Declared, it is used as written; a stage with more than `fleetAbove` targets and none
 * declared rolls out as a fleet anyway: a canary target first, then the rest, with the 5 % failure budget that
 * stops the rollout and rolls back the failed targets.
 */
export function resolveRollout(r: StageInput['rollout'], targets: number): RolloutSettings | undefined {
  if (!r && targets <= TARGET_DEFAULTS.fleetAbove) return undefined;
  return {
    waves: r ? r.waves.map(wave) : [{ count: 1 }, { percent: 100 }],
    pauseMs: r?.pause ?? 0,
    soakMs: r?.soak ?? 0,
    maxFailPercentage:
      r?.max_fail_percentage ??
      (r?.max_fail === undefined ? TARGET_DEFAULTS.fleetMaxFailPercentage : undefined),
    maxFail: r?.max_fail,
    onBudgetExceeded: r?.on_budget_exceeded ?? 'rollback-failed',
    preflight: r?.preflight ?? 'per-target',
    implicit: !r,
  };
}

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

export function resolveWindow(w: ConfigInput['window'], issues: ConfigIssue[]): WindowSettings | undefined {
  if (!w) return undefined;
  const tz = w.tz ?? 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    issues.push({
      path: 'window.tz',
      message: `unknown time zone ${JSON.stringify(tz)}; expected e.g. "UTC" or "Europe/Berlin"`,
    });
  }
  const days = new Set<number>();
  for (const d of w.days ?? ['mon-sun']) {
    const [a, b] = d.split('-').map((x) => DAYS.indexOf(x));
    for (let i = a; ; i = (i + 1) % 7) {
      days.add(i);
      if (i === (b ?? a)) break;
    }
  }
  const minutes = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3));
  const from = minutes(w.from);
  const to = minutes(w.to);
  if (from === to)
    issues.push({ path: 'window.to', message: `the window from ${w.from} to ${w.to} is empty` });
  return {
    days: [...days].sort(),
    fromMinutes: from,
    toMinutes: to,
    tz,
    wait: w.wait ?? false,
    text: `${(w.days ?? ['mon-sun']).join(',')} ${w.from}-${w.to} ${tz}`,
  };
}
