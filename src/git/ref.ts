import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { DeployError } from '../errors';

/**
 * Refs come from workflow inputs and branch names, which attackers can choose. Only a conservative subset of
 * git's ref syntax is accepted, and only the resolved 40-hex SHA ever travels further.
 */
const SAFE_REF = /^[A-Za-z0-9_][A-Za-z0-9._/+-]*$/;
/** Longer refs are refused: git's own limit for a ref name is the file name limit of 255 bytes. */
const MAX_REF_LENGTH = 255;

export function validateRef(ref: string): void {
  const why = !ref
    ? 'it is empty'
    : ref.length > MAX_REF_LENGTH
      ? `it is ${ref.length} characters long; at most ${MAX_REF_LENGTH} are accepted`
      : ref.startsWith('-')
        ? 'it starts with "-" and could be read as an option'
        : !SAFE_REF.test(ref)
          ? 'it contains characters outside [A-Za-z0-9._/+-]'
          : ref.includes('..') || ref.endsWith('/') || ref.endsWith('.lock') || ref.includes('//')
            ? 'it is not a valid git ref name'
            : undefined;
  if (why) throw new DeployError('config', `ref ${JSON.stringify(ref)} rejected: ${why}`);
}

function git(args: string[], cwd: string): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  }).trim();
}

export function repoRoot(dir: string): string {
  try {
    return git(['rev-parse', '--show-toplevel'], dir);
  } catch {
    throw new DeployError(
      'config',
      `${dir} is not inside a git repository; homelab-deploy deploys committed files`,
    );
  }
}

/** Resolves a ref to the full commit SHA on the runner, before anything runs anywhere. */
export function resolveRef(ref: string, dir: string): string {
  validateRef(ref);
  const root = repoRoot(dir);
  try {
    const sha = git(['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`], root);
    if (!/^[0-9a-f]{40}$/.test(sha)) throw new Error(sha);
    return sha;
  } catch {
    throw new DeployError(
      'config',
      `ref ${JSON.stringify(ref)} does not name a commit in ${path.basename(root)} (fetch it first?)`,
    );
  }
}
