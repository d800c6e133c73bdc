import type { RunnerTargetConfig } from '../../config/types';
import type { Release } from '../../run/context';

/**
 * Pure pieces of the runner target: the environment its commands get, how a version is read from `current`'s
 * output, and how a failed command is described. No processes here, so a unit test can read every rule.
 */

/** The target config as the runner target reads it: `down` is the optional way back when nothing ran before. */
export type RunnerConfig = RunnerTargetConfig & { down?: string };

export type RunnerCommand = 'current' | 'up' | 'rollback' | 'snapshot' | 'down' | 'health';

export interface CommandVars {
  project: string;
  target: Pick<RunnerTargetConfig, 'name' | 'vars'>;
  release: Release;
  stage?: string;
  /** The version a rollback returns to (`rollback`), or the one live before this release (`up`, `snapshot`). */
  previous?: string | null;
  /** The infrastructure snapshot recorded for this release (`rollback`, `down`). */
  snapshot?: string;
  /** The version a health check runs against. */
  version?: string | null;
}

/** HD_VAR_<NAME> for a target var: upper-cased, anything but letters, digits and `_` becomes `_`. */
export function varEnvName(key: string): string {
  return `HD_VAR_${key.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}

/**
 * The run's environment plus the HD_* variables. Ours win over a same-named variable in the run's environment,
 * and the optional ones are removed when they do not apply, so a stray HD_PREVIOUS or HD_SNAPSHOT in the runner's
 * env can never send a rollback somewhere else.
 */
export function commandEnv(base: NodeJS.ProcessEnv, v: CommandVars): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  delete env.HD_SNAPSHOT;
  delete env.HD_VERSION;
  for (const [k, val] of Object.entries(v.target.vars)) env[varEnvName(k)] = val;
  Object.assign(env, {
    HD_PROJECT: v.project,
    HD_TARGET: v.target.name,
    HD_RELEASE: v.release.id,
    HD_COMMIT: v.release.commit,
    HD_REF: v.release.ref,
    HD_STAGE: v.stage ?? '',
    HD_PREVIOUS: v.previous ?? '',
  });
  if (v.snapshot !== undefined) env.HD_SNAPSHOT = v.snapshot;
  if (v.version !== undefined) env.HD_VERSION = v.version ?? '';
  return env;
}

export const MAX_VERSION_LENGTH = 512;

/**
 * The version `current` printed: its stdout, trimmed, which must be one line; no output means nothing is deployed
 * (null). More than one line is refused rather than guessed at: a tool's banner on stdout would otherwise be
 * recorded as the version to roll back to whenever nothing is deployed (logs belong on stderr).
 */
export function parseVersion(stdout: string): { version: string | null } | { error: string } {
  const lines = stdout
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length === 0) return { version: null };
  if (lines.length > 1)
    return {
      error: `it printed ${lines.length} lines on stdout; it must print only the version (or nothing when nothing is deployed) and log to stderr`,
    };
  const line = lines[0];
  if (line.length > MAX_VERSION_LENGTH)
    return { error: `it is ${line.length} characters long; a version is at most ${MAX_VERSION_LENGTH}` };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(line)) return { error: 'it contains control characters' };
  return { version: line };
}

/**
 * The name a `snapshot` command gives its snapshot: its last non-empty stdout line (a backup tool logs first and
 * names what it made last), at most 200 characters; undefined when it printed nothing.
 */
export function snapshotName(stdout: string): string | undefined {
  const line = stdout
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .pop();
  // eslint-disable-next-line no-control-regex
  return line && line.length <= 200 && !/[\u0000-\u001f\u007f]/.test(line) ? line : undefined;
}

/** The last lines of an output for an error message: one line, at most `max` characters. */
export function outputGist(output: string, lines = 5, max = 600): string {
  const text = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-lines)
    .join(' | ');
  return text.length > max ? '…' + text.slice(-max) : text;
}
