import * as path from 'node:path';
import { DeployError } from '../errors';
import { repoRoot } from '../git/ref';
import { showFileArgs } from './git-args';
import { gitComplaint, runGit } from './git';
import { versionProblem } from './names';
import type { VersionSource } from './types';

const WHERE = 'release.tag.version_from';

/** The version a file's text declares: package.json's "version", or a VERSION file's first non-empty line. */
export function parseVersionFile(text: string, format: 'json' | 'text', file: string): string {
  let version: unknown;
  if (format === 'json') {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new DeployError('config', `${WHERE}: ${file} is not valid JSON: ${(err as Error).message}`);
    }
    version = doc !== null && typeof doc === 'object' ? (doc as Record<string, unknown>).version : undefined;
    if (typeof version !== 'string')
      throw new DeployError(
        'config',
        `${WHERE}: ${file} has no "version" string (found ${version === undefined ? 'none' : JSON.stringify(version)})`,
      );
  } else {
    version = text
      .replace(/^\uFEFF/, '')
      .split(/\r?\n/)
      .map((l) => l.trim())
      .find(Boolean);
    if (version === undefined) throw new DeployError('config', `${WHERE}: ${file} is empty`);
  }
  const why = versionProblem(version as string);
  if (why) throw new DeployError('config', `${WHERE}: ${file}: ${why}`);
  return version as string;
}

export interface VersionRun {
  dir: string;
  commit: string;
  /** The CLI's --release-version or the action's release-version input. */
  explicit?: string;
  signal?: AbortSignal;
}

/**
 * The release's version. An explicit value wins over the file (a hotfix can be tagged without editing
 * package.json); the file is read as committed at the deployed commit, never from the working tree, so the tag
 * names the version of what runs.
 */
export async function resolveVersion(
  source: VersionSource,
  run: VersionRun,
): Promise<{ version: string; from: string }> {
  if (run.explicit !== undefined && run.explicit !== '') {
    const why = versionProblem(run.explicit);
    if (why)
      throw new DeployError('config', `release version (--release-version / release-version input): ${why}`);
    return { version: run.explicit, from: 'the release-version input' };
  }
  if (source.kind === 'input')
    throw new DeployError(
      'config',
      `${WHERE} is "input" but no version was given: pass --release-version (CLI) or the release-version input (action)`,
    );
  const root = repoRoot(run.dir);
  const rel = path.relative(root, source.path).split(path.sep).join('/');
  if (rel.startsWith('../') || rel === '..' || path.isAbsolute(rel))
    throw new DeployError('config', `${WHERE}: ${source.as} is outside the repository ${root}`);
  const r = await runGit(showFileArgs(run.commit, rel), { cwd: root, signal: run.signal });
  if (r.cancelled) throw new DeployError('cancelled', `${WHERE}: cancelled`);
  if (r.code !== 0)
    throw new DeployError(
      'config',
      `${WHERE}: ${rel} is not in commit ${run.commit.slice(0, 12)} (${gitComplaint(r)}); commit it, or give the version explicitly`,
    );
  return {
    version: parseVersionFile(r.stdout, source.format, `${rel} at ${run.commit.slice(0, 12)}`),
    from: `${rel} at ${run.commit.slice(0, 12)}`,
  };
}
