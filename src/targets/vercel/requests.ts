import { createHash } from 'node:crypto';
import type { VercelTargetConfig } from '../../config/types';
import { DeployError } from '../../errors';
import type { RollbackPoint } from '../target';
import type { CreateDeploymentBody, DeploymentFile, GitSource } from './types';

/**
 * Pure builders for what the Vercel target sends: team scoping, the deployment body, git sources, file
 * digests, and the metadata that lets a later job find the rollback point from Vercel alone.
 */

/** `?teamId=` for a team id (team_...), `?slug=` for a team slug; nothing for a personal account. */
export function teamQuery(team: string | undefined): Record<string, string> {
  if (!team) return {};
  return team.startsWith('team_') ? { teamId: team } : { slug: team };
}

/**
 * Deployment metadata keys. Vercel keeps `meta` with the deployment and returns it with the project's production
 * deployment, so any job can read which release is live and where its rollback returns to without our state store.
 */
export const META = {
  release: 'hdRelease',
  commit: 'hdCommit',
  previous: 'hdPrevious',
  runId: 'hdRunId',
  stage: 'hdStage',
  recordedAt: 'hdRecordedAt',
} as const;

export function deploymentMeta(p: {
  release: string;
  commit: string;
  previous: string | null;
  runId?: string;
  stage: string;
  recordedAt: string;
}): Record<string, string> {
  return {
    [META.release]: p.release,
    [META.commit]: p.commit,
    // Meta values are strings: '' stands for "nothing was live before".
    [META.previous]: p.previous ?? '',
    [META.runId]: p.runId ?? '',
    [META.stage]: p.stage,
    [META.recordedAt]: p.recordedAt,
  };
}

/** The rollback point a deployment's metadata records for `release`, or undefined when it is not that release's. */
export function pointFromMeta(
  meta: Record<string, string> | undefined,
  release: string,
  fallbackTime?: number,
): RollbackPoint | undefined {
  if (!meta || meta[META.release] !== release) return undefined;
  return {
    release,
    previous: meta[META.previous] ? meta[META.previous] : null,
    recordedAt: meta[META.recordedAt] || new Date(fallbackTime ?? 0).toISOString(),
    runId: meta[META.runId] || undefined,
  };
}

/** A branch or tag name as Vercel's git source wants it: without the `refs/heads/` / `refs/tags/` prefix. */
export function gitRef(ref: string): string {
  return ref.replace(/^refs\/(heads|tags)\//, '');
}

const FULL_SHA = /^[0-9a-f]{40}$/;

/**
 * The `gitSource` for the commit being deployed, through the project's git integration. The commit is always the
 * full SHA, so Vercel builds exactly this commit and not whatever `ref` points at when the build starts.
 */
export function gitSourceFor(
  target: string,
  source: Extract<VercelTargetConfig['source'], { type: 'git' }>,
  release: { commit: string; ref: string },
): GitSource {
  if (!FULL_SHA.test(release.commit))
    throw new DeployError(
      'config',
      `targets.${target}: a git source needs the full 40-character commit SHA, got ${JSON.stringify(release.commit)}`,
    );
  const ref = gitRef(release.ref) || release.commit;
  const sha = release.commit;
  if (source.provider === 'gitlab') return { type: 'gitlab', projectId: source.repo, ref, sha };
  const parts = source.repo.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1])
    throw new DeployError(
      'config',
      `targets.${target}.source.repo: expected "owner/name" for ${source.provider}, got ${JSON.stringify(source.repo)}`,
    );
  const [owner, name] = parts;
  if (source.provider === 'bitbucket') return { type: 'bitbucket', owner, slug: name, ref, sha };
  return { type: 'github', org: owner, repo: name, ref, sha };
}

export interface FileDigest {
  path: string;
  sha: string;
  size: number;
  data: Buffer;
}

/** SHA1 of each file: POST /v2/files takes the content with its digest in `x-vercel-digest`. */
export function fileDigests(files: readonly { path: string; data: Buffer }[]): FileDigest[] {
  return files.map((f) => ({
    path: f.path,
    sha: createHash('sha1').update(f.data).digest('hex'),
    size: f.data.length,
    data: f.data,
  }));
}

export function fileEntries(digests: readonly FileDigest[]): DeploymentFile[] {
  return digests.map((d) => ({ file: d.path, sha: d.sha, size: d.size }));
}

export type BuildKind =
  /** A production build that gets no production domains until it is promoted. */
  | 'staged-production'
  | 'preview'
  /** The production build of a checked preview (Vercel promotes a preview only by rebuilding it for production). */
  | 'production-from-preview';

export function createDeploymentBody(p: {
  kind: BuildKind;
  projectId: string;
  projectName: string;
  meta: Record<string, string>;
  gitSource?: GitSource;
  files?: DeploymentFile[];
  fromDeployment?: string;
}): CreateDeploymentBody {
  const body: CreateDeploymentBody = { name: p.projectName, project: p.projectId, meta: p.meta };
  if (p.kind === 'production-from-preview') {
    if (!p.fromDeployment)
      throw new DeployError('internal', 'a production build from a preview needs its id');
    body.deploymentId = p.fromDeployment;
  } else if (p.gitSource) body.gitSource = p.gitSource;
  else if (p.files) body.files = p.files;
  else throw new DeployError('internal', 'a deployment needs a git source or files');
  if (p.kind !== 'preview') {
    body.target = 'production';
    body.autoAssignCustomDomains = false;
  }
  return body;
}
