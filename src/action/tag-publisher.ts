import { DeployError, type ErrorClass } from '../errors';
import { attempt, createReleaseTag, githubClient, type ApiOptions } from '../github/api';
import type { PublishResult, TagPublisher } from '../release/tag';

export interface GitHubTagOptions extends Omit<ApiOptions, 'token'> {
  token: string;
  /** owner/repo, as GITHUB_REPOSITORY names it. */
  repository: string;
  /** Told when the lookup before the deploy could not ask GitHub; the tag is then tried after the release stage. */
  warn?: (message: string) => void;
}

/** What a failed tag call was: a refusal to move a tag, a missing permission, or GitHub not answering. */
function classOf(status: number): ErrorClass {
  if (status === 422) return 'precondition';
  if (status === 401 || status === 403 || status === 404) return 'auth';
  if (status === 0) return 'unreachable';
  return 'command-failed';
}

/**
 * The release tag through the GitHub REST API, for the action: the runner's checkout has no credentials
 * (persist-credentials: false), so git could not push a tag. The job's token needs `contents: write`.
 * A tag already on the deployed commit is a re-run (created: false); one on another commit is never moved.
 */
export function githubTagPublisher(o: GitHubTagOptions): TagPublisher {
  const [owner, repo] = o.repository.split('/');
  if (!owner || !repo)
    throw new DeployError('config', `GITHUB_REPOSITORY ${JSON.stringify(o.repository)} is not owner/repo`);
  const api: ApiOptions = { ...o, token: o.token };
  return {
    via: 'github-api',
    async publish(tag: string, sha: string, message: string): Promise<PublishResult> {
      const r = await createReleaseTag({ owner, repo, tag, sha, message }, api);
      if (r.ok) return { created: r.created, existing: r.created ? undefined : sha };
      throw new DeployError(
        classOf(r.status),
        r.status === 401 || r.status === 403 || r.status === 404
          ? `${r.error} (HTTP ${r.status}): the job's token needs contents: write to create release tags`
          : r.error,
      );
    },
    async lookup(tag: string): Promise<string | undefined> {
      const gh = githubClient(api);
      const ref = await attempt(() => gh.rest.git.getRef({ owner, repo, ref: `tags/${tag}` }));
      if (!ref.ok) {
        if (ref.status !== 404)
          o.warn?.(
            `release tag ${tag}: could not look it up on GitHub before deploying (${ref.status ? `HTTP ${ref.status}: ` : ''}${ref.error}); it is checked again when it is created`,
          );
        return undefined;
      }
      const obj = ref.body?.object;
      if (!obj) return undefined;
      if (obj.type !== 'tag') return obj.sha;
      // An annotated tag's ref names the tag object; the commit is behind it.
      const annotated = await attempt(() => gh.rest.git.getTag({ owner, repo, tag_sha: obj.sha }));
      return annotated.ok ? annotated.body?.object.sha : undefined;
    },
  };
}
