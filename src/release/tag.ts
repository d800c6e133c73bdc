import { DeployError } from '../errors';
import { repoRoot } from '../git/ref';
import { createTagArgs, lsRemoteTagArgs, pushTagArgs, tagTargetArgs } from './git-args';
import { gitComplaint, gitOutput, runGit, type GitOptions } from './git';
import { validateRemoteName, validateSha, validateTagName } from './names';

export function tagConflict(tag: string, existing: string, wanted: string, where?: string): DeployError {
  return new DeployError(
    'precondition',
    `release tag ${tag} already exists${where ? ` ${where}` : ''} on commit ${existing}, not on the deployed commit ${wanted}: bump the version (or change release.tag.name) and deploy again; an existing release tag is never moved`,
  );
}

export interface PublishResult {
  /** False when the tag already existed on this commit (a re-run): nothing was changed. */
  created: boolean;
  /** The commit an existing tag named (always the deployed one: another commit is an error). */
  existing?: string;
  /** Git path: the tag was pushed to the remote (or was there already). */
  pushed?: boolean;
}

/**
 * Creates an annotated release tag on a commit, idempotently: a tag already on that commit is success
 * (`created: false`), one on another commit is a `precondition` error naming both. Implemented with git on the
 * runner here, and with the GitHub REST API (tag object, then refs/tags/<name>) by the action.
 */
export interface TagPublisher {
  readonly via: 'git' | 'github-api';
  publish(tag: string, sha: string, message: string): Promise<PublishResult>;
  /** The commit the tag names where it would be published, if it exists; for refusing before deploying. */
  lookup?(tag: string): Promise<string | undefined>;
}

export interface GitTagOptions {
  /** A directory in the repository. */
  dir: string;
  push: boolean;
  remote: string;
  timeoutMs: number;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

/** The identity tags are made with on a runner that has none configured (git would refuse to tag). */
export const FALLBACK_TAGGER = { name: 'homelab-deploy', email: 'homelab-deploy@localhost' };

/** `git tag -a` on the runner, then `git push <remote> refs/tags/<name>` when pushing is on. */
export class GitTagPublisher implements TagPublisher {
  readonly via = 'git' as const;
  private readonly cwd: string;
  private readonly o: GitTagOptions;

  constructor(o: GitTagOptions) {
    validateRemoteName(o.remote, 'release.tag.remote');
    this.o = o;
    this.cwd = repoRoot(o.dir);
  }

  private git(extra: Partial<GitOptions> = {}): GitOptions {
    return { cwd: this.cwd, signal: this.o.signal, env: this.o.env, timeoutMs: this.o.timeoutMs, ...extra };
  }

  private async local(tag: string): Promise<string | undefined> {
    const r = await runGit(tagTargetArgs(tag), this.git());
    const sha = r.stdout.trim();
    return r.code === 0 && /^[0-9a-f]{40}$/.test(sha) ? sha : undefined;
  }

  /** The commit the remote's tag peels to; undefined when the remote has no such tag. */
  private async remote(tag: string): Promise<string | undefined> {
    const out = await gitOutput(lsRemoteTagArgs(this.o.remote, tag), {
      ...this.git(),
      what: `release tag: reading ${tag} on ${this.o.remote}`,
      errorClass: 'unreachable',
    });
    const refs = new Map(
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const [sha, name] = l.split('\t');
          return [name, sha] as const;
        }),
    );
    return refs.get(`refs/tags/${tag}^{}`) ?? refs.get(`refs/tags/${tag}`);
  }

  async lookup(tag: string): Promise<string | undefined> {
    validateTagName(tag, 'release.tag.name');
    const local = await this.local(tag);
    const remote = this.o.push ? await this.remote(tag) : undefined;
    if (local && remote && local !== remote)
      throw new DeployError(
        'precondition',
        `release tag ${tag} is on commit ${local} in this clone but on ${remote} on ${this.o.remote}: delete the stray local tag (git tag -d ${tag}) and run again`,
      );
    return remote ?? local;
  }

  private async identityEnv(): Promise<NodeJS.ProcessEnv> {
    const env = { ...(this.o.env ?? process.env) };
    if (env.GIT_COMMITTER_NAME && env.GIT_COMMITTER_EMAIL) return env;
    const get = async (key: string) =>
      (await runGit(['config', '--get', key], this.git())).stdout.trim() || undefined;
    const [name, email] = [await get('user.name'), await get('user.email')];
    if (!env.GIT_COMMITTER_NAME && !name) env.GIT_COMMITTER_NAME = FALLBACK_TAGGER.name;
    if (!env.GIT_COMMITTER_EMAIL && !email) env.GIT_COMMITTER_EMAIL = FALLBACK_TAGGER.email;
    return env;
  }

  async publish(tag: string, sha: string, message: string): Promise<PublishResult> {
    validateTagName(tag, 'release.tag.name');
    validateSha(sha, 'the tagged commit');
    const { remote, push } = this.o;
    const onRemote = push ? await this.remote(tag) : undefined;
    if (onRemote && onRemote !== sha) throw tagConflict(tag, onRemote, sha, `on ${remote}`);
    const local = await this.local(tag);
    if (local && local !== sha) throw tagConflict(tag, local, sha, 'in this clone');
    let created = false;
    if (!local && !onRemote) {
      await gitOutput(createTagArgs(tag, sha), {
        ...this.git({ stdin: message, env: await this.identityEnv() }),
        what: `release tag: git tag ${tag}`,
      });
      created = true;
    }
    if (!push) return { created, existing: created ? undefined : local };
    if (onRemote) return { created: false, existing: onRemote, pushed: true };
    const r = await runGit(pushTagArgs(remote, tag), this.git());
    if (r.cancelled) throw new DeployError('cancelled', `release tag: pushing ${tag}: cancelled`);
    if (r.code !== 0) {
      // Another run may have pushed the same release tag in between: fine when it names the same commit.
      const now = r.timedOut ? undefined : await this.remote(tag).catch(() => undefined);
      if (now === sha) return { created, existing: created ? undefined : sha, pushed: true };
      if (now) throw tagConflict(tag, now, sha, `on ${remote}`);
      throw new DeployError(
        r.timedOut ? 'timeout' : 'unreachable',
        `release tag ${tag} was made in this clone but pushing it to ${remote} failed${
          r.timedOut ? ` (no answer within ${Math.round(this.o.timeoutMs / 1000)}s)` : `: ${gitComplaint(r)}`
        }; push it with git push ${remote} refs/tags/${tag}, or run the release again`,
      );
    }
    return { created, existing: created ? undefined : sha, pushed: true };
  }
}
