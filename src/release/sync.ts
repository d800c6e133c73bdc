import { DeployError } from '../errors';
import { repoRoot } from '../git/ref';
import {
  countArgs,
  fetchBranchArgs,
  isAncestorArgs,
  isShallowArgs,
  remoteUrlArgs,
  resolveCommitArgs,
  trackingRef,
} from './git-args';
import { gitComplaint, gitOutput, runGit } from './git';
import { validateSha } from './names';
import type { SyncReport, SyncSettings } from './types';

const WHERE = 'release.sync.with';

/** What git says about the commit to deploy and the branch tip; everything the verdict needs. */
export interface SyncFacts {
  commit: string;
  tip: string;
  contains: boolean;
  /** Commits of the tip the commit lacks, and commits of the commit the tip lacks (0 when `contains`). */
  behind: number;
  ahead: number;
  shallow: boolean;
  fetched: boolean;
}

const commits = (n: number) => `${n} commit${n === 1 ? '' : 's'}`;

/**
 * The refusal for a commit that does not contain the branch tip, or undefined when it does. A commit ahead of the
 * branch (a feature branch built on the current main) is up to date; one behind or diverged is not.
 */
export function syncProblem(f: SyncFacts, ref: string): string | undefined {
  if (f.contains) return undefined;
  const seen = f.fetched ? '' : ` (${ref} as last fetched: release.sync.fetch is off)`;
  const count = `${f.shallow ? 'appears to be' : 'is'} ${commits(f.behind)} behind ${ref}${
    f.ahead > 0 ? ` and ${f.ahead} ahead (the two have diverged)` : ''
  }`;
  const shallow = f.shallow
    ? ' This clone is shallow, so the history linking the two may be missing: check out with fetch-depth: 0 (actions/checkout) or run git fetch --unshallow, and run again.'
    : '';
  return (
    `${WHERE}: commit ${f.commit} does not contain the tip of ${ref} (${f.tip})${seen}: it ${count}. ` +
    `Bring it up to date: merge ${ref} into the branch (git merge ${ref}) or rebase onto it ` +
    `(git rebase ${ref}), push, and deploy the new commit.${shallow}`
  );
}

export interface SyncRun {
  /** A directory inside the repository (the config's). */
  dir: string;
  /** The full SHA about to be deployed. */
  commit: string;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

/**
 * Refuses (class `precondition`) a commit that does not contain the tip of `settings.remote/branch`, after
 * fetching that branch unless fetching is off. A failed fetch is `unreachable` (or `timeout`), never a verdict:
 * the check does not guess from a stale ref unless told to.
 */
export async function checkUpToDate(settings: SyncSettings, run: SyncRun): Promise<SyncReport> {
  validateSha(run.commit, 'the commit to deploy');
  const cwd = repoRoot(run.dir);
  const ref = `${settings.remote}/${settings.branch}`;
  const rb = { remote: settings.remote, branch: settings.branch, text: ref };
  const git = { cwd, signal: run.signal, env: run.env };

  const remote = await runGit(remoteUrlArgs(settings.remote), git);
  if (remote.code !== 0 && !remote.cancelled)
    throw new DeployError(
      'config',
      `${WHERE}: the repository ${cwd} has no remote ${JSON.stringify(settings.remote)} (git remote -v lists those it has)`,
    );

  if (settings.fetch) {
    const r = await runGit(fetchBranchArgs(rb), { ...git, timeoutMs: settings.fetchTimeoutMs });
    const offline = `, or set release.sync.fetch: false to check against ${ref} as last fetched`;
    if (r.cancelled) throw new DeployError('cancelled', `${WHERE}: fetching ${ref}: cancelled`);
    if (r.timedOut)
      throw new DeployError(
        'timeout',
        `${WHERE}: git fetch ${settings.remote} ${settings.branch} did not finish within ${Math.round(settings.fetchTimeoutMs / 1000)}s; check the runner's network access to the remote${offline}`,
      );
    if (r.code !== 0 && /couldn't find remote ref/i.test(r.stderr))
      throw new DeployError(
        'config',
        `${WHERE}: ${settings.remote} has no branch ${JSON.stringify(settings.branch)} (git fetch: ${gitComplaint(r)}); name a branch it has`,
      );
    if (r.code !== 0)
      throw new DeployError(
        'unreachable',
        `${WHERE}: git fetch ${settings.remote} ${settings.branch} failed, so it is unknown whether the commit is up to date: ${gitComplaint(r)}. Check that the remote is reachable and the branch exists${offline}`,
      );
  }

  const tipOut = await runGit(resolveCommitArgs(trackingRef(rb)), git);
  const tip = tipOut.stdout.trim();
  if (tipOut.code !== 0 || !/^[0-9a-f]{40}$/.test(tip))
    throw new DeployError(
      'precondition',
      `${WHERE}: ${ref} is not known in ${cwd}${settings.fetch ? '' : ' (release.sync.fetch is off: fetch it first, or turn fetching on)'}`,
    );

  const anc = await runGit(isAncestorArgs(tip, run.commit), git);
  if (anc.code !== 0 && anc.code !== 1)
    throw new DeployError('internal', `${WHERE}: git merge-base failed: ${gitComplaint(anc)}`);
  const contains = anc.code === 0;
  const count = async (from: string, to: string) =>
    Number((await gitOutput(countArgs(from, to), { ...git, what: WHERE })).trim());
  const facts: SyncFacts = {
    commit: run.commit,
    tip,
    contains,
    behind: contains ? 0 : await count(run.commit, tip),
    ahead: await count(tip, run.commit),
    shallow: contains ? false : (await gitOutput(isShallowArgs(), { ...git, what: WHERE })).trim() === 'true',
    fetched: settings.fetch,
  };
  const problem = syncProblem(facts, ref);
  if (problem) throw new DeployError('precondition', problem);
  return { with: ref, tip, commit: run.commit, ahead: facts.ahead, fetched: settings.fetch };
}
