import { nearest } from '../config/suggest';
import type { Config } from '../config/types';
import { phaseNames } from '../plan/plan';

/** Hosts named by --targets, checked against the config so a typo fails before any host is contacted. */
export function checkTargets(config: Config, targets: string[] | undefined): string | undefined {
  if (!targets) return undefined;
  const known = Object.keys(config.hosts);
  const bad = targets.filter((t) => !config.hosts[t]);
  if (!bad.length) return undefined;
  return `--targets: ${bad
    .map((b) => {
      const near = nearest(b, known);
      return `unknown host "${b}"${near ? ` (did you mean "${near}"?)` : ''}`;
    })
    .join(', ')}; ${config.file} has ${known.join(', ')}`;
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

/** A comma-separated --targets value as names. */
export const splitList = (value: string): string[] =>
  value
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
