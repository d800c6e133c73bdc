import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { DeployError } from '../../src/errors';
import { appendChangelog } from '../../src/release/changelog';
import { resolveRelease, type ReleaseInput } from '../../src/release/config';
import { prepareRelease, runReleaseSteps, gitTagPublisher, type ReleaseRun } from '../../src/release/steps';
import { checkUpToDate } from '../../src/release/sync';
import { FALLBACK_TAGGER, GitTagPublisher } from '../../src/release/tag';
import type { ChangelogSettings, ReleaseSettings, SyncSettings } from '../../src/release/types';

/**
 * The release steps against real git: a bare "origin" in a temp directory, clones of it as the config's
 * repository and as a colleague pushing to main. Remotes are local paths or loopback ports only.
 */

const SRC = path.resolve(__dirname, '../../src');
/** Git as the tests' own hands (committing, inspecting), with an identity and no user or system config. */
const ENV = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };

function git(cwd: string, ...args: string[]): string {
  return execFileSync(
    'git',
    ['-c', 'user.name=Dev', '-c', 'user.email=dev@example.com', '-c', 'commit.gpgsign=false', ...args],
    { cwd, encoding: 'utf8', env: ENV, stdio: ['ignore', 'pipe', 'pipe'] },
  ).trim();
}

let root: string;
let seq = 0;

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-release-'));
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

interface World {
  origin: string;
  work: string;
  other: string;
  /** Commits a file change in `repo` with `subject`; returns the SHA. */
  commit(repo: string, subject: string, files?: Record<string, string>): string;
}

/** A bare origin with main at a first commit (package.json at 0.4.0), cloned twice. */
function world(): World {
  const dir = path.join(root, `w${++seq}`);
  fs.mkdirSync(dir);
  const origin = path.join(dir, 'origin.git');
  git(dir, 'init', '-q', '--bare', '-b', 'main', origin);
  const seed = path.join(dir, 'seed');
  git(dir, 'init', '-q', '-b', 'main', seed);
  let n = 0;
  const commit = (repo: string, subject: string, files: Record<string, string> = {}) => {
    const all = { [`f${++n}.txt`]: subject, ...files };
    for (const [f, text] of Object.entries(all)) {
      fs.mkdirSync(path.dirname(path.join(repo, f)), { recursive: true });
      fs.writeFileSync(path.join(repo, f), text);
    }
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', subject);
    return git(repo, 'rev-parse', 'HEAD');
  };
  commit(seed, 'Initial commit', { 'package.json': JSON.stringify({ name: 'app', version: '0.4.0' }) });
  git(seed, 'remote', 'add', 'origin', origin);
  git(seed, 'push', '-q', 'origin', 'main');
  const work = path.join(dir, 'work');
  const other = path.join(dir, 'other');
  git(dir, 'clone', '-q', origin, work);
  git(dir, 'clone', '-q', origin, other);
  return { origin, work, other, commit };
}

const sync = (over: Partial<SyncSettings> = {}): SyncSettings => ({
  remote: 'origin',
  branch: 'main',
  fetch: true,
  fetchTimeoutMs: 20_000,
  stages: [],
  ...over,
});

async function refusal(p: Promise<unknown>): Promise<DeployError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DeployError);
    return err as DeployError;
  }
  throw new Error('expected a refusal, got success');
}

describe('up to date with origin/main', () => {
  it('refuses a commit behind origin/main after fetching it, naming both SHAs and the count', async () => {
    const w = world();
    const deployed = git(w.work, 'rev-parse', 'HEAD');
    w.commit(w.other, 'Colleague: fix login');
    const tip = w.commit(w.other, 'Colleague: bump deps');
    git(w.other, 'push', '-q', 'origin', 'main');
    // The clone has not seen the new commits yet: only the check's own fetch can tell it.
    expect(git(w.work, 'rev-parse', 'refs/remotes/origin/main')).toBe(deployed);

    const err = await refusal(checkUpToDate(sync(), { dir: w.work, commit: deployed }));
    expect(err.errorClass).toBe('precondition');
    expect(err.message).toBe(
      `release.sync.with: commit ${deployed} does not contain the tip of origin/main (${tip}): it is 2 commits behind origin/main. ` +
        'Bring it up to date: merge origin/main into the branch (git merge origin/main) or rebase onto it (git rebase origin/main), push, and deploy the new commit.',
    );
    expect(git(w.work, 'rev-parse', 'refs/remotes/origin/main')).toBe(tip);
  });

  it('says when the branches have diverged', async () => {
    const w = world();
    const tip = w.commit(w.other, 'Colleague: on main');
    git(w.other, 'push', '-q', 'origin', 'main');
    const local = w.commit(w.work, 'Mine: not rebased');
    const err = await refusal(checkUpToDate(sync(), { dir: w.work, commit: local }));
    expect(err.message).toContain(`commit ${local} does not contain the tip of origin/main (${tip})`);
    expect(err.message).toContain('it is 1 commit behind origin/main and 1 ahead (the two have diverged)');
  });

  it('accepts the tip itself and a commit ahead of it', async () => {
    const w = world();
    const tip = w.commit(w.other, 'Colleague: on main');
    git(w.other, 'push', '-q', 'origin', 'main');
    git(w.work, 'pull', '-q', '--ff-only', 'origin', 'main');
    expect(await checkUpToDate(sync(), { dir: w.work, commit: tip })).toEqual({
      with: 'origin/main',
      tip,
      commit: tip,
      ahead: 0,
      fetched: true,
    });
    const ahead = w.commit(w.work, 'Feature on top of main');
    const r = await checkUpToDate(sync(), { dir: w.work, commit: ahead });
    expect(r).toMatchObject({ tip, commit: ahead, ahead: 1 });
  });

  it('without fetching, compares with origin/main as last fetched and says so', async () => {
    const w = world();
    const deployed = git(w.work, 'rev-parse', 'HEAD');
    w.commit(w.other, 'Colleague: unseen');
    git(w.other, 'push', '-q', 'origin', 'main');
    // Offline: the stale tracking ref is what there is, and it is contained.
    expect(await checkUpToDate(sync({ fetch: false }), { dir: w.work, commit: deployed })).toMatchObject({
      tip: deployed,
      fetched: false,
    });
    git(w.work, 'fetch', '-q', 'origin');
    git(w.work, 'reset', '-q', '--hard', deployed);
    const err = await refusal(checkUpToDate(sync({ fetch: false }), { dir: w.work, commit: deployed }));
    expect(err.message).toContain(
      '(origin/main as last fetched: release.sync.fetch is off): it is 1 commit behind',
    );
  });

  it('a remote path that does not exist is an unreachable error that says what to do', async () => {
    const w = world();
    git(w.work, 'remote', 'set-url', 'origin', path.join(root, 'nowhere.git'));
    const err = await refusal(
      checkUpToDate(sync(), { dir: w.work, commit: git(w.work, 'rev-parse', 'HEAD') }),
    );
    expect(err.errorClass).toBe('unreachable');
    expect(err.message).toMatch(
      /^release\.sync\.with: git fetch origin main failed, so it is unknown whether the commit is up to date: .*does not appear to be a git repository/,
    );
    expect(err.message).toContain(
      'or set release.sync.fetch: false to check against origin/main as last fetched',
    );
  });

  it('a refused loopback connection is unreachable, with credentials in the URL masked', async () => {
    const w = world();
    const port = await closedPort();
    git(w.work, 'remote', 'set-url', 'origin', `http://deploy:s3cr3t-token@127.0.0.1:${port}/app.git`);
    const err = await refusal(
      checkUpToDate(sync(), { dir: w.work, commit: git(w.work, 'rev-parse', 'HEAD') }),
    );
    expect(err.errorClass).toBe('unreachable');
    expect(err.message).toMatch(/Failed to connect|Connection refused|Could not connect/i);
    expect(err.message).not.toContain('s3cr3t-token');
  });

  it('a remote that accepts and never answers times out, and git is gone afterwards', async () => {
    const w = world();
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => void sockets.push(s)); // accepts, never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    const url = `http://127.0.0.1:${port}/silent-${seq}.git`;
    git(w.work, 'remote', 'set-url', 'origin', url);
    try {
      const started = Date.now();
      const err = await refusal(
        checkUpToDate(sync({ fetchTimeoutMs: 1500 }), {
          dir: w.work,
          commit: git(w.work, 'rev-parse', 'HEAD'),
        }),
      );
      expect(err.errorClass).toBe('timeout');
      expect(err.message).toContain('release.sync.with: git fetch origin main did not finish within 2s');
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(sockets.length).toBeGreaterThan(0); // it really got as far as the remote
      // Killed as a group: git and its transport helper are gone (allowing the kernel a moment to reap them).
      const until = Date.now() + 3000;
      while (processesMentioning(url).length > 0 && Date.now() < until)
        await new Promise((r) => setTimeout(r, 50));
      expect(processesMentioning(url)).toEqual([]);
    } finally {
      sockets.forEach((s) => s.destroy());
      await new Promise((r) => server.close(r));
    }
  });

  it('a branch the remote does not have is a config error naming it', async () => {
    const w = world();
    const err = await refusal(
      checkUpToDate(sync({ branch: 'mian' }), { dir: w.work, commit: git(w.work, 'rev-parse', 'HEAD') }),
    );
    expect(err.errorClass).toBe('config');
    expect(err.message).toMatch(
      /^release\.sync\.with: origin has no branch "mian" \(git fetch: .*couldn't find remote ref/,
    );
  });

  it('a remote that is not configured is a config error', async () => {
    const w = world();
    const err = await refusal(
      checkUpToDate(sync({ remote: 'upstream' }), { dir: w.work, commit: git(w.work, 'rev-parse', 'HEAD') }),
    );
    expect(err.errorClass).toBe('config');
    expect(err.message).toContain('has no remote "upstream"');
  });

  it('in a shallow clone, a commit whose parent is the tip is refused with the fetch-depth hint', async () => {
    const w = world();
    const tip = git(w.other, 'rev-parse', 'HEAD');
    git(w.other, 'checkout', '-q', '-b', 'feature');
    const feature = w.commit(w.other, 'Feature');
    git(w.other, 'push', '-q', 'origin', 'feature');
    const shallow = path.join(path.dirname(w.work), 'shallow');
    git(root, 'clone', '-q', '--depth', '1', '--branch', 'feature', `file://${w.origin}`, shallow);
    const err = await refusal(checkUpToDate(sync(), { dir: shallow, commit: feature }));
    expect(err.errorClass).toBe('precondition');
    expect(err.message).toContain(`commit ${feature} does not contain the tip of origin/main (${tip})`);
    expect(err.message).toContain('it appears to be 1 commit behind');
    expect(err.message).toContain('This clone is shallow');
    expect(err.message).toContain('fetch-depth: 0');
    // With the history, the same commit is up to date.
    git(shallow, 'fetch', '-q', '--unshallow', 'origin');
    expect(await checkUpToDate(sync(), { dir: shallow, commit: feature })).toMatchObject({ tip, ahead: 1 });
  });
});

const TAG_INPUT: ReleaseInput = {
  tag: {
    name: 'v{{version}}',
    message: 'Release {{tag}} ({{release}})\n\n#42 fixed. Commit {{commit}}, run {{run_url}}',
  },
};

function settings(input: ReleaseInput, dir: string): ReleaseSettings {
  const issues: { path: string; message: string }[] = [];
  const s = resolveRelease(input, dir, ['staging', 'production'], issues);
  expect(issues).toEqual([]);
  return s as ReleaseSettings;
}

function runOf(dir: string, commit: string, over: Partial<ReleaseRun> = {}): ReleaseRun {
  return {
    dir,
    project: 'app',
    commit,
    releaseId: commit.slice(0, 12),
    ref: 'main',
    runUrl: 'https://github.example.com/acme/app/actions/runs/7',
    now: new Date('2025-12-16T10:00:00Z'),
    env: ENV, // no user identity configured, like a fresh runner
    ...over,
  };
}

function tagInfo(repoOrGitDir: string, tag: string, bare = false) {
  const g = (...a: string[]) => (bare ? git(root, '--git-dir', repoOrGitDir, ...a) : git(repoOrGitDir, ...a));
  return {
    type: g('cat-file', '-t', `refs/tags/${tag}`),
    object: g('rev-parse', `refs/tags/${tag}`),
    commit: g('rev-parse', `refs/tags/${tag}^{commit}`),
    message: g('for-each-ref', '--format=%(contents)', `refs/tags/${tag}`),
    tagger: g('for-each-ref', '--format=%(taggername) %(taggeremail)', `refs/tags/${tag}`),
  };
}

describe('release tag with git', () => {
  it('makes an annotated tag on the deployed commit, version read from the commit, and pushes it', async () => {
    const w = world();
    const commit = git(w.work, 'rev-parse', 'HEAD');
    // The working tree says otherwise; the commit is what is released.
    fs.writeFileSync(path.join(w.work, 'package.json'), JSON.stringify({ version: '9.9.9' }));
    const s = settings(TAG_INPUT, w.work);
    const run = runOf(w.work, commit);
    const publisher = gitTagPublisher(s, run);
    const prepared = await prepareRelease(s, run, publisher);
    expect(prepared.tag).toMatchObject({
      name: 'v0.4.0',
      version: '0.4.0',
      versionFrom: `package.json at ${commit.slice(0, 12)}`,
    });
    const report = await runReleaseSteps(prepared, publisher);
    expect(report).toMatchObject({
      status: 'ok',
      tag: { name: 'v0.4.0', commit, via: 'git', ok: true, created: true, pushed: true },
    });
    const local = tagInfo(w.work, 'v0.4.0');
    expect(local.type).toBe('tag');
    expect(local.commit).toBe(commit);
    expect(local.message).toBe(
      `Release v0.4.0 (${commit.slice(0, 12)})\n\n#42 fixed. Commit ${commit}, run https://github.example.com/acme/app/actions/runs/7`,
    );
    expect(local.tagger).toBe(`${FALLBACK_TAGGER.name} <${FALLBACK_TAGGER.email}>`);
    const remote = tagInfo(w.origin, 'v0.4.0', true);
    expect(remote).toEqual(local);
  });

  it('a re-run finds the tag on the same commit and changes nothing, also from a clone without it', async () => {
    const w = world();
    const commit = git(w.work, 'rev-parse', 'HEAD');
    const first = new GitTagPublisher({
      dir: w.work,
      push: true,
      remote: 'origin',
      timeoutMs: 20_000,
      env: ENV,
    });
    expect(await first.publish('v0.4.0', commit, 'Release v0.4.0')).toEqual({ created: true, pushed: true });
    const object = git(root, '--git-dir', w.origin, 'rev-parse', 'refs/tags/v0.4.0');

    expect(await first.publish('v0.4.0', commit, 'Release v0.4.0')).toEqual({
      created: false,
      existing: commit,
      pushed: true,
    });
    // A later job on another runner: its clone has no such tag, the remote has.
    const s = settings(TAG_INPUT, w.other);
    const run = runOf(w.other, commit);
    const report = await runReleaseSteps(
      await prepareRelease(s, run, gitTagPublisher(s, run)),
      gitTagPublisher(s, run),
    );
    expect(report.tag).toMatchObject({ ok: true, created: false, pushed: true });
    expect(git(root, '--git-dir', w.origin, 'rev-parse', 'refs/tags/v0.4.0')).toBe(object);
    expect(() => git(w.other, 'rev-parse', '--verify', '--quiet', 'refs/tags/v0.4.0')).toThrow();
  });

  it('refuses a tag that exists on another commit, before deploying and when publishing', async () => {
    const w = world();
    const tagged = git(w.work, 'rev-parse', 'HEAD');
    const pub = new GitTagPublisher({
      dir: w.work,
      push: true,
      remote: 'origin',
      timeoutMs: 20_000,
      env: ENV,
    });
    await pub.publish('v0.4.0', tagged, 'Release v0.4.0');
    const next = w.commit(w.work, 'Fix without a version bump');
    const s = settings(TAG_INPUT, w.work);

    const early = await refusal(prepareRelease(s, runOf(w.work, next), pub));
    expect(early.errorClass).toBe('precondition');
    expect(early.message).toBe(
      `release tag v0.4.0 already exists on commit ${tagged}, not on the deployed commit ${next}: bump the version (or change release.tag.name) and deploy again; an existing release tag is never moved`,
    );
    const late = await refusal(pub.publish('v0.4.0', next, 'x'));
    expect(late.message).toContain(
      `already exists on origin on commit ${tagged}, not on the deployed commit ${next}`,
    );
    // Only in the clone (pushing off): named as such.
    git(w.other, 'tag', '-a', '-m', 'stray', 'v0.5.0', git(w.other, 'rev-parse', 'HEAD'));
    const local = new GitTagPublisher({
      dir: w.other,
      push: false,
      remote: 'origin',
      timeoutMs: 20_000,
      env: ENV,
    });
    const stray = await refusal(local.publish('v0.5.0', next, 'x'));
    expect(stray.message).toContain('already exists in this clone on commit');
    expect(git(root, '--git-dir', w.origin, 'rev-parse', 'refs/tags/v0.4.0^{commit}')).toBe(tagged);
  });

  it('push: false tags the clone only; explicit version wins over the file', async () => {
    const w = world();
    const commit = git(w.work, 'rev-parse', 'HEAD');
    const s = settings({ tag: { ...TAG_INPUT.tag, push: false } }, w.work);
    const run = runOf(w.work, commit, { explicitVersion: '1.0.0-rc.1' });
    const report = await runReleaseSteps(
      await prepareRelease(s, run, gitTagPublisher(s, run)),
      gitTagPublisher(s, run),
    );
    expect(report.tag).toMatchObject({ name: 'v1.0.0-rc.1', ok: true, created: true });
    expect(report.tag?.pushed).toBeUndefined();
    expect(tagInfo(w.work, 'v1.0.0-rc.1').commit).toBe(commit);
    expect(git(root, '--git-dir', w.origin, 'tag', '--list')).toBe('');
  });

  it('reads a VERSION file at the commit, and "input" without a version is a clear error', async () => {
    const w = world();
    const commit = w.commit(w.work, 'Add VERSION', { VERSION: '2.1.0\n' });
    const s = settings(
      { tag: { name: 'release-{{version}}', version_from: 'VERSION', push: false } },
      w.work,
    );
    expect((await prepareRelease(s, runOf(w.work, commit))).tag?.name).toBe('release-2.1.0');
    const bad = settings({ tag: { version_from: 'input' } }, w.work);
    const err = await refusal(prepareRelease(bad, runOf(w.work, commit)));
    expect(err.message).toBe(
      'release.tag.version_from is "input" but no version was given: pass --release-version (CLI) or the release-version input (action)',
    );
    const missing = settings({ tag: { version_from: 'deploy/VERSION' } }, w.work);
    const gone = await refusal(prepareRelease(missing, runOf(w.work, commit)));
    expect(gone.message).toContain(
      `release.tag.version_from: deploy/VERSION is not in commit ${commit.slice(0, 12)}`,
    );
  });

  it('an unreachable remote fails the tag step before making anything; a re-run after the fix finishes it', async () => {
    const w = world();
    const commit = git(w.work, 'rev-parse', 'HEAD');
    const s = settings(TAG_INPUT, w.work);
    const run = runOf(w.work, commit);
    const prepared = await prepareRelease(s, { ...run }, undefined);
    git(w.work, 'remote', 'set-url', 'origin', path.join(root, 'gone.git'));
    const failed = await runReleaseSteps(prepared, gitTagPublisher(s, run));
    expect(failed.status).toBe('failed');
    expect(failed.tag?.error?.class).toBe('unreachable');
    expect(failed.tag?.error?.message).toContain('release tag: reading v0.4.0 on origin');
    expect(() => git(w.work, 'rev-parse', '--verify', '--quiet', 'refs/tags/v0.4.0')).toThrow();
    git(w.work, 'remote', 'set-url', 'origin', w.origin);
    const ok = await runReleaseSteps(prepared, gitTagPublisher(s, run));
    expect(ok.tag).toMatchObject({ ok: true, pushed: true });
    expect(git(root, '--git-dir', w.origin, 'rev-parse', 'refs/tags/v0.4.0^{commit}')).toBe(commit);
  });

  it('a push the remote rejects (hook) is reported with the command to finish it', async () => {
    const w = world();
    const commit = git(w.work, 'rev-parse', 'HEAD');
    const hook = path.join(w.origin, 'hooks', 'pre-receive');
    fs.writeFileSync(hook, '#!/bin/sh\necho "tags are frozen today" >&2\nexit 1\n', { mode: 0o755 });
    const pub = new GitTagPublisher({
      dir: w.work,
      push: true,
      remote: 'origin',
      timeoutMs: 20_000,
      env: ENV,
    });
    const err = await refusal(pub.publish('v0.4.0', commit, 'Release'));
    expect(err.errorClass).toBe('unreachable');
    expect(err.message).toContain(
      'release tag v0.4.0 was made in this clone but pushing it to origin failed',
    );
    expect(err.message).toContain('tags are frozen today');
    expect(err.message).toContain('push it with git push origin refs/tags/v0.4.0');
    expect(tagInfo(w.work, 'v0.4.0').commit).toBe(commit);
    fs.rmSync(hook);
    expect(await pub.publish('v0.4.0', commit, 'Release')).toEqual({
      created: false,
      existing: commit,
      pushed: true,
    });
  });
});

const CL = (file: string, over: Partial<ChangelogSettings> = {}): ChangelogSettings => ({
  file,
  position: 'bottom',
  maxEntries: 200,
  ...over,
});

describe('changelog', () => {
  function released(): { w: World; prev: string; commit: string } {
    const w = world();
    const prev = w.commit(w.work, 'Release prep');
    git(w.work, 'tag', '-a', '-m', 'Release v0.3.0', 'v0.3.0', prev);
    git(w.work, 'tag', 'unrelated-marker', prev); // other tags do not count as releases
    w.commit(w.work, 'feat: export to CSV');
    w.commit(w.work, 'fix: <script> in titles is escaped');
    const commit = w.commit(w.work, 'chore: bump to 0.4.0');
    return { w, prev, commit };
  }
  const entryRun = (dir: string, commit: string) => ({
    dir,
    tag: 'v0.4.0',
    commit,
    releaseId: commit.slice(0, 12),
    date: '2025-12-16',
    runUrl: 'https://github.example.com/acme/app/actions/runs/7',
    tagGlob: 'v*',
  });

  it('appends the release with the subjects since the previous release tag, and only once', async () => {
    const { w, commit } = released();
    const file = path.join(w.work, 'CHANGELOG.md');
    fs.writeFileSync(file, '# Changelog\n\nAll releases of app.\n');
    fs.chmodSync(file, 0o640);
    const res = await appendChangelog(CL(file), entryRun(w.work, commit));
    expect(res).toEqual({ file, written: true, previousTag: 'v0.3.0', commits: 3 });
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toBe(
      [
        '# Changelog',
        '',
        'All releases of app.',
        '',
        '## v0.4.0 (2025-12-16)',
        '',
        `<!-- homelab-deploy release tag=v0.4.0 commit=${commit} -->`,
        `Commit \`${commit.slice(0, 12)}\` · [deploy run](https://github.example.com/acme/app/actions/runs/7) · changes since v0.3.0:`,
        '',
        '- chore: bump to 0.4.0',
        '- fix: &lt;script> in titles is escaped',
        '- feat: export to CSV',
        '',
      ].join('\n'),
    );
    expect(fs.statSync(file).mode & 0o777).toBe(0o640);

    expect(await appendChangelog(CL(file), entryRun(w.work, commit))).toEqual({
      file,
      written: false,
      commits: 0,
    });
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
    const other = await refusal(
      appendChangelog(CL(file), entryRun(w.work, git(w.work, 'rev-parse', 'HEAD~1'))),
    );
    expect(other.message).toContain(`already has an entry for v0.4.0 on commit ${commit}`);
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
  });

  it('newest first on top, a file outside the repository, and a first release listing everything', async () => {
    const w = world();
    const commit = w.commit(w.work, 'Second commit');
    const releases = path.join(path.dirname(w.work), 'releases');
    fs.mkdirSync(releases);
    const file = path.join(releases, 'CHANGELOG.md');
    fs.writeFileSync(file, '# Releases\n\n## v0.0.1 (2020-01-01)\n\n- old\n');
    const res = await appendChangelog(CL(file, { position: 'top' }), entryRun(w.work, commit));
    expect(res).toMatchObject({ written: true, previousTag: undefined, commits: 2 });
    const text = fs.readFileSync(file, 'utf8');
    expect(text.startsWith('# Releases\n\n## v0.4.0 (2025-12-16)\n')).toBe(true);
    expect(text).toContain(
      'first release:\n\n- Second commit\n- Initial commit\n\n## v0.0.1 (2020-01-01)\n\n- old\n',
    );
    const cut = path.join(releases, 'CUT.md');
    await appendChangelog(CL(cut, { maxEntries: 1 }), entryRun(w.work, commit));
    expect(fs.readFileSync(cut, 'utf8')).toContain('- Second commit\n- … and 1 earlier commits\n');
  });

  it('a directory that does not exist is named, and nothing is created', async () => {
    const w = world();
    const file = path.join(w.work, 'docs', 'CHANGELOG.md');
    const err = await refusal(appendChangelog(CL(file), entryRun(w.work, git(w.work, 'rev-parse', 'HEAD'))));
    expect(err.errorClass).toBe('config');
    expect(err.message).toContain(`the directory ${path.dirname(file)} does not exist`);
    expect(fs.existsSync(path.dirname(file))).toBe(false);
  });

  it('a shallow clone with no release tag in reach refuses instead of listing a partial history', async () => {
    const w = world();
    w.commit(w.other, 'More');
    git(w.other, 'push', '-q', 'origin', 'main');
    const shallow = path.join(path.dirname(w.work), 'shallow');
    git(root, 'clone', '-q', '--depth', '1', `file://${w.origin}`, shallow);
    const err = await refusal(
      appendChangelog(
        CL(path.join(shallow, 'CHANGELOG.md')),
        entryRun(shallow, git(shallow, 'rev-parse', 'HEAD')),
      ),
    );
    expect(err.errorClass).toBe('precondition');
    expect(err.message).toContain('this clone is shallow and no earlier release tag (v*) is in reach');
    expect(fs.existsSync(path.join(shallow, 'CHANGELOG.md'))).toBe(false);
  });

  describe('an interrupted write leaves the old file whole', () => {
    let build: string;
    beforeAll(() => {
      // The writer runs in a child process under a file-size limit, so the kernel cuts its write part way.
      build = path.join(root, 'build');
      const sources = [
        'errors.ts',
        'git/ref.ts',
        'targets/state/atomic-file.ts',
        'release/changelog.ts',
        'release/git-args.ts',
        'release/git.ts',
        'release/names.ts',
      ];
      for (const rel of sources) {
        const out = ts.transpileModule(fs.readFileSync(path.join(SRC, rel), 'utf8'), {
          compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
          fileName: rel,
        });
        const f = path.join(build, rel.replace(/\.ts$/, '.js'));
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.writeFileSync(f, out.outputText);
      }
      fs.writeFileSync(
        path.join(build, 'append.js'),
        `const { appendChangelog } = require('./release/changelog.js');
const [settings, run] = process.argv.slice(2).map((a) => JSON.parse(a));
appendChangelog(settings, run).then(
  (r) => console.log(JSON.stringify(r)),
  (e) => { console.error(e.message); process.exit(3); },
);`,
      );
      fs.writeFileSync(
        path.join(build, 'naive.js'),
        `const fs = require('node:fs');
const [file, text] = process.argv.slice(2);
fs.writeFileSync(file, text);`,
      );
    });

    it('cut short by the file-size limit: old content intact, no temp file left; a plain write would truncate', () => {
      const { w, commit } = released();
      const file = path.join(w.work, 'CHANGELOG.md');
      const old = '# Changelog\n\n' + '- an earlier release line that makes the file long\n'.repeat(400);
      fs.writeFileSync(file, old);
      expect(old.length).toBeGreaterThan(16 * 1024);
      const limit = 'ulimit -f 16'; // 16 blocks of 512 bytes: the new file stops at 8 KiB
      const run = spawnSync(
        '/bin/sh',
        [
          '-c',
          `${limit}; exec node "$@"`,
          'sh',
          path.join(build, 'append.js'),
          JSON.stringify(CL(file)),
          JSON.stringify(entryRun(w.work, commit)),
        ],
        { encoding: 'utf8' },
      );
      expect(run.status).toBe(3);
      expect(run.stderr).toContain(
        `release.changelog: writing ${file} failed (EFBIG); the file is unchanged`,
      );
      expect(fs.readFileSync(file, 'utf8')).toBe(old);
      expect(fs.readdirSync(w.work).filter((n) => n.includes('.tmp-'))).toEqual([]);

      // The control: the same limit on a plain overwrite destroys the file, so the limit really hit mid-write.
      const copy = path.join(w.work, 'COPY.md');
      fs.writeFileSync(copy, old);
      spawnSync(
        '/bin/sh',
        ['-c', `${limit}; exec node "$@"`, 'sh', path.join(build, 'naive.js'), copy, old + 'x'],
        {
          encoding: 'utf8',
        },
      );
      expect(fs.statSync(copy).size).toBe(8192);

      // Without the limit, the same child writes the entry.
      const ok = spawnSync(
        'node',
        [path.join(build, 'append.js'), JSON.stringify(CL(file)), JSON.stringify(entryRun(w.work, commit))],
        {
          encoding: 'utf8',
        },
      );
      expect(ok.status).toBe(0);
      expect(fs.readFileSync(file, 'utf8').startsWith(old)).toBe(true);
      expect(fs.readFileSync(file, 'utf8')).toContain('## v0.4.0 (2025-12-16)');
    });

    const canMount = process.getuid?.() === 0 && spawnSync('mount', ['--version']).status === 0;
    (canMount ? it : it.skip)(
      'on a full file system (a 64 KiB tmpfs): old content intact, no temp file',
      async () => {
        const { w, commit } = released();
        const mnt = path.join(root, `full-${seq}`);
        fs.mkdirSync(mnt);
        const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt], { encoding: 'utf8' });
        if (m.status !== 0) throw new Error(`mount failed: ${m.stderr}`);
        try {
          const file = path.join(mnt, 'CHANGELOG.md');
          const old = '# Changelog\n\n' + 'x'.repeat(40 * 1024) + '\n';
          fs.writeFileSync(file, old);
          const err = await refusal(appendChangelog(CL(file), entryRun(w.work, commit)));
          expect(err.message).toContain('failed (ENOSPC); the file is unchanged');
          expect(fs.readFileSync(file, 'utf8')).toBe(old);
          expect(fs.readdirSync(mnt)).toEqual(['CHANGELOG.md']);
        } finally {
          spawnSync('umount', [mnt]);
        }
      },
    );
  });
});

describe('tag, then changelog', () => {
  it('writes the entry after the tag, and none when the tag failed', async () => {
    const w = world();
    const first = git(w.work, 'rev-parse', 'HEAD');
    const input: ReleaseInput = { ...TAG_INPUT, changelog: { file: 'CHANGELOG.md' } };
    const s = settings(input, w.work);
    const run = runOf(w.work, first);
    const rep = await runReleaseSteps(
      await prepareRelease(s, run, gitTagPublisher(s, run)),
      gitTagPublisher(s, run),
    );
    expect(rep).toMatchObject({
      status: 'ok',
      tag: { ok: true, created: true },
      changelog: { ok: true, written: true, commits: 1, file: path.join(w.work, 'CHANGELOG.md') },
    });
    // Next release, without a version bump: the tag is refused, so the changelog is not touched.
    const next = w.commit(w.work, 'Forgot the bump');
    const before = fs.readFileSync(path.join(w.work, 'CHANGELOG.md'), 'utf8');
    const runNext = runOf(w.work, next);
    const prepared = await prepareRelease(s, runNext); // no lookup: the refusal comes when publishing
    const failed = await runReleaseSteps(prepared, gitTagPublisher(s, runNext));
    expect(failed.status).toBe('failed');
    expect(failed.tag?.error).toEqual({
      class: 'precondition',
      message: expect.stringContaining(`already exists on origin on commit ${first}`),
    });
    expect(failed.changelog).toMatchObject({
      ok: false,
      written: false,
      error: { message: 'not written: the release tag v0.4.0 was not made' },
    });
    expect(fs.readFileSync(path.join(w.work, 'CHANGELOG.md'), 'utf8')).toBe(before);

    // After the bump the second entry lists the commits since v0.4.0 only.
    const bumped = w.commit(w.work, 'Bump to 0.5.0', {
      'package.json': JSON.stringify({ version: '0.5.0' }),
    });
    const run3 = runOf(w.work, bumped);
    const rep3 = await runReleaseSteps(
      await prepareRelease(s, run3, gitTagPublisher(s, run3)),
      gitTagPublisher(s, run3),
    );
    expect(rep3.changelog).toMatchObject({ ok: true, previousTag: 'v0.4.0', commits: 2 });
    expect(fs.readFileSync(path.join(w.work, 'CHANGELOG.md'), 'utf8')).toContain(
      'changes since v0.4.0:\n\n- Bump to 0.5.0\n- Forgot the bump\n',
    );
  });
});

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Live processes whose command line contains `text` (git and its transport helpers carry the URL). */
function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      if (cmd.includes(text) && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}
