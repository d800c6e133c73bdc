import { nearest } from '../config/suggest';
import type { Config } from '../config/types';
import { isPattern, selectTargets } from '../config/select';
import { phaseNames, selectRunTargets } from '../plan/plan';

/** The config's target names for a message: all of them for a few, a count and the first ones for a fleet. */
function knownList(known: string[]): string {
  return known.length > 12
    ? `${known.length} targets (${known.slice(0, 12).join(', ')}, ...)`
    : known.join(', ');
}

/**
 * Targets named by --targets (names, globs, label selectors), checked against the config so a typo fails before
 * any target is contacted: a plain name that does not exist gets the nearest one, a pattern that matches nothing
 * is named. The selection itself is the engine's (selectRunTargets), so the CLI, the action and `plan` agree.
 */
export function checkTargets(config: Config, targets: string[] | undefined): string | undefined {
  if (!targets) return undefined;
  const all = Object.values(config.targets);
  const known = all.map((t) => t.name);
  const { unmatched } = selectTargets(targets, all);
  if (!unmatched.length) return undefined;
  return `--targets: ${unmatched
    .map((b) => {
      if (isPattern(b)) return `${JSON.stringify(b)} matches no target`;
      const near = nearest(b, known);
      return `unknown host "${b}"${near ? ` (did you mean "${near}"?)` : ''}`;
    })
    .join(', ')}; ${config.file} has ${knownList(known)}`;
}

/** The target names --targets selects (every target of the config without it), in the config's order. */
export function selectedNames(config: Config, targets: string[] | undefined): string[] {
  if (!targets) return Object.keys(config.targets);
  return selectRunTargets(config, targets);
}

/**
 * Phases named by --phase, checked against the config's phases with a suggestion per unknown name. The sentence
 * is the one parsePhases (src/plan/plan.ts) throws, so the action and the CLI word it alike.
 */
export function checkPhases(config: Config, spec: string | undefined): string | undefined {
  if (spec === undefined) return undefined;
  const all = phaseNames(config);
  const wanted = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (wanted.includes('all')) return undefined;
  const unknown = wanted.filter((w) => !all.includes(w));
  if (!unknown.length) return undefined;
  const hints = unknown
    .map((u) => [u, nearest(u, ['all', ...all])] as const)
    .filter(([, near]) => near)
    .map(([u, near]) => (unknown.length > 1 ? `"${near}" for "${u}"` : `"${near}"`));
  return (
    `phase ${unknown.map((u) => JSON.stringify(u)).join(', ')} is not a phase of this config; expected "all" or some of: ${all.join(', ')}` +
    (hints.length ? `; did you mean ${hints.join(', ')}?` : '')
  );
}

/** Phase and target names are checked against the config before anything connects, with a suggestion for typos. */
export function precheck(
  config: Config,
  phase: string | undefined,
  targets: string[] | undefined,
): string | undefined {
  return checkPhases(config, phase) ?? checkTargets(config, targets);
}

/** How a precheck problem is printed: target problems name --targets themselves, phase problems are config errors. */
export const precheckMessage = (bad: string) =>
  bad.startsWith('--targets') ? `${bad}\n` : `error [config]: ${bad}\n`;
