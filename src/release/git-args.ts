import type { RemoteBranch } from './names';

/**
 * The git command lines of the release steps, as argument vectors (no shell ever parses them). Every name in them
 * was validated by names.ts; every revision is a full SHA or a fully spelled ref, never a user's expression.
 */

/** Where the sync check keeps the fetched branch tip: the ordinary remote-tracking ref. */
export function trackingRef(rb: RemoteBranch): string {
  return `refs/remotes/${rb.remote}/${rb.branch}`;
}

/**
 * An explicit refspec, so the tracking ref is updated whatever the clone's `remote.<name>.fetch` says (a
 * single-branch clone or actions/checkout's narrow fetch would otherwise leave it stale). No tags, no submodules:
 * the check needs one commit and its history.
 */
export function fetchBranchArgs(rb: RemoteBranch): string[] {
  return [
    'fetch',
    '--no-tags',
    '--no-recurse-submodules',
    '--no-write-fetch-head',
    rb.remote,
    `+refs/heads/${rb.branch}:${trackingRef(rb)}`,
  ];
}

export function remoteUrlArgs(remote: string): string[] {
  return ['remote', 'get-url', remote];
}

/** Resolves a fully spelled ref to the commit it names; exit 1 with no output when it does not exist. */
export function resolveCommitArgs(ref: string): string[] {
  return ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`];
}

/** Exit 0: `ancestor` is reachable from `commit` (or is it); exit 1: it is not. */
export function isAncestorArgs(ancestor: string, commit: string): string[] {
  return ['merge-base', '--is-ancestor', ancestor, commit];
}

/** How many commits `to` has that `from` does not. */
export function countArgs(from: string, to: string): string[] {
  return ['rev-list', '--count', `${from}..${to}`];
}

export function isShallowArgs(): string[] {
  return ['rev-parse', '--is-shallow-repository'];
}

/** The file's content as committed at `sha` (path relative to the repository root, "/"-separated). */
export function showFileArgs(sha: string, repoPath: string): string[] {
  return ['cat-file', 'blob', `${sha}:${repoPath}`];
}

export function tagTargetArgs(tag: string): string[] {
  return resolveCommitArgs(`refs/tags/${tag}`);
}

/**
 * An annotated tag; the message comes on stdin (`-F -`) so its text is never an argument, and `whitespace`
 * cleanup keeps lines starting with "#" (an issue number) that git's default would strip as comments.
 */
export function createTagArgs(tag: string, sha: string): string[] {
  return ['tag', '--annotate', '--cleanup=whitespace', '--file=-', '--end-of-options', tag, sha];
}

/** The tag as the remote has it: the tag object and, for an annotated tag, the commit it peels to. */
export function lsRemoteTagArgs(remote: string, tag: string): string[] {
  return ['ls-remote', '--tags', remote, `refs/tags/${tag}`, `refs/tags/${tag}^{}`];
}

export function pushTagArgs(remote: string, tag: string): string[] {
  return ['push', '--no-verify', '--porcelain', remote, `refs/tags/${tag}:refs/tags/${tag}`];
}

/** The tag message, parsed by the tests and by `git show`: `%(contents)` of an annotated tag. */
export function tagMessageArgs(tag: string): string[] {
  return ['for-each-ref', '--format=%(objecttype) %(contents)', `refs/tags/${tag}`];
}

/**
 * The release tag nearest to `sha` among those the name template can produce (`glob`), other than the one being
 * made. Lightweight tags count too: a project may have tagged earlier releases by hand.
 */
export function previousTagArgs(sha: string, glob: string, exclude: string): string[] {
  return ['describe', '--tags', '--abbrev=0', `--match=${glob}`, `--exclude=${exclude}`, sha];
}

/** Commit subjects in `range` (`prev..sha`, or `sha` for the first release), newest first, at most `max`. */
export function subjectsArgs(range: string, max: number): string[] {
  return ['log', `--max-count=${max}`, '--format=%s', range, '--'];
}
