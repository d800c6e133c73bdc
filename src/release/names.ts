import { DeployError } from '../errors';

/**
 * Names that reach git's argument vector: remote names, branch names, tag names, versions. Each is checked before
 * it is used, so no value from a config file, a workflow input or a package.json can turn into an option or a
 * revision expression (`-x`, `a..b`, `v1^{}`, `@{-1}`).
 */

/** Why `name` is not a valid ref name component path by git-check-ref-format(1), or undefined when it is. */
export function refNameProblem(name: string): string | undefined {
  if (name === '') return 'it is empty';
  if (name.startsWith('-')) return 'it starts with "-" and could be read as an option';
  if (name === '@') return 'it is the single character "@"';
  // eslint-disable-next-line no-control-regex
  const bad = /[\x00-\x20\x7f~^:?*[\\]/.exec(name);
  if (bad) {
    const c = bad[0];
    const shown = c.charCodeAt(0) < 0x21 || c === '\x7f' ? `a control character or space` : `"${c}"`;
    return `it contains ${shown} (not allowed: space, control characters, ~ ^ : ? * [ \\)`;
  }
  if (name.includes('..')) return 'it contains ".."';
  if (name.includes('@{')) return 'it contains "@{"';
  if (name.startsWith('/') || name.endsWith('/')) return 'it starts or ends with "/"';
  if (name.includes('//')) return 'it contains "//"';
  if (name.endsWith('.')) return 'it ends with "."';
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return `its component ${JSON.stringify(part)} starts with "."`;
    if (part.endsWith('.lock')) return `its component ${JSON.stringify(part)} ends with ".lock"`;
  }
  if (Buffer.byteLength(name) > 200) return 'it is longer than 200 bytes';
  return undefined;
}

/** A tag name (what follows `refs/tags/`), checked by git's ref name rules. */
export function validateTagName(name: string, where: string): string {
  const why = refNameProblem(name);
  if (why) throw new DeployError('config', `${where}: tag name ${JSON.stringify(name)} is not valid: ${why}`);
  return name;
}

const REMOTE_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;

export function remoteNameProblem(name: string): string | undefined {
  if (!REMOTE_RE.test(name) || name.endsWith('.lock') || name.includes('..'))
    return `remote ${JSON.stringify(name)} is not a remote name (letters, digits, ".", "_", "-"; such as origin)`;
  return undefined;
}

export function validateRemoteName(name: string, where: string): string {
  const why = remoteNameProblem(name);
  if (why) throw new DeployError('config', `${where}: ${why}`);
  return name;
}

export interface RemoteBranch {
  remote: string;
  branch: string;
  /** As written: `origin/main`. */
  text: string;
}

/**
 * Splits `origin/main` (or `upstream/release/1.x`) at its first "/": the remote is one path segment, the branch is
 * the rest. Remote names with a "/" in them exist in git but are rare enough not to be worth the ambiguity.
 */
export function parseRemoteBranch(text: string): RemoteBranch | string {
  const slash = text.indexOf('/');
  if (slash <= 0 || slash === text.length - 1)
    return `expected <remote>/<branch> such as origin/main, got ${JSON.stringify(text)}`;
  const remote = text.slice(0, slash);
  const branch = text.slice(slash + 1);
  const r = remoteNameProblem(remote);
  if (r) return r;
  const b = refNameProblem(branch);
  if (b) return `branch ${JSON.stringify(branch)} is not a valid branch name: ${b}`;
  if (branch === 'HEAD') return 'name a branch, not HEAD';
  return { remote, branch, text };
}

/** Versions such as 0.4.0, 1.2.3-rc.1+build.5 or 2025.12.16: what a tag name template can safely embed. */
const VERSION_RE = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;

export function versionProblem(version: string): string | undefined {
  if (!VERSION_RE.test(version))
    return `expected a version such as 0.4.0 (letters, digits, ".", "+", "_", "-"; at most 64), got ${JSON.stringify(version.slice(0, 80))}`;
  if (version.includes('..') || version.endsWith('.') || version.endsWith('.lock'))
    return `version ${JSON.stringify(version)} cannot be part of a tag name (no "..", no trailing "." or ".lock")`;
  return undefined;
}

const SHA_RE = /^[0-9a-f]{40}$/;

export function validateSha(sha: string, what: string): string {
  if (!SHA_RE.test(sha))
    throw new DeployError('internal', `${what} must be a full 40-hex commit SHA, got ${JSON.stringify(sha)}`);
  return sha;
}
