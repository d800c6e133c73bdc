import { spawnSync } from 'node:child_process';
import {
  createTagArgs,
  fetchBranchArgs,
  lsRemoteTagArgs,
  previousTagArgs,
  pushTagArgs,
  subjectsArgs,
} from '../../src/release/git-args';
import { scrubUrls } from '../../src/release/git';
import { parseRemoteBranch, refNameProblem, validateTagName, versionProblem } from '../../src/release/names';

/** git's own verdict on a tag name: the rules names.ts implements. */
function gitAccepts(name: string): boolean {
  return spawnSync('git', ['check-ref-format', `refs/tags/${name}`]).status === 0;
}

const NAMES = [
  'v0.4.0',
  'v1.2.3-rc.1+build.5',
  'release/2025-12-16',
  'app@1.0',
  'v1.0.0_hotfix',
  'ümlaut-1',
  'x',
  '',
  'v1..2',
  'v1.0.',
  'v1.0.lock',
  'rel/.hidden',
  '.v1',
  'rel//x',
  'rel/',
  '/rel',
  'v1 0',
  'v1~1',
  'v1^0',
  'v1:0',
  'v1?',
  'v1*',
  'v1[0]',
  'v1\\0',
  'v1@{0}',
  'v1\t',
  'v1\x7f',
  'a/b.lock/c',
];

describe('tag names follow git check-ref-format', () => {
  it.each(NAMES)('%j: same verdict as git', (name) => {
    expect(refNameProblem(name) === undefined).toBe(gitAccepts(name));
  });

  it('refuses what git would accept but reads as an option or as HEAD', () => {
    expect(gitAccepts('-v1')).toBe(true);
    expect(refNameProblem('-v1')).toBe('it starts with "-" and could be read as an option');
    expect(gitAccepts('@')).toBe(true);
    expect(refNameProblem('@')).toBe('it is the single character "@"');
  });

  it('says which rule a name breaks, naming key and value', () => {
    expect(() => validateTagName('v1..2', 'release.tag.name')).toThrow(
      'release.tag.name: tag name "v1..2" is not valid: it contains ".."',
    );
    expect(refNameProblem('v1 0')).toContain('a control character or space');
    expect(refNameProblem('v1.lock')).toBe('its component "v1.lock" ends with ".lock"');
  });
});

describe('remote/branch', () => {
  it('splits at the first slash; branches may have more', () => {
    expect(parseRemoteBranch('origin/main')).toEqual({
      remote: 'origin',
      branch: 'main',
      text: 'origin/main',
    });
    expect(parseRemoteBranch('upstream/release/1.x')).toMatchObject({
      remote: 'upstream',
      branch: 'release/1.x',
    });
  });

  it.each([
    ['main', 'expected <remote>/<branch> such as origin/main, got "main"'],
    ['origin/', 'expected <remote>/<branch> such as origin/main, got "origin/"'],
    ['-o/main', 'remote "-o" is not a remote name'],
    ['origin/ma..in', 'branch "ma..in" is not a valid branch name: it contains ".."'],
    ['origin/HEAD', 'name a branch, not HEAD'],
    ['origin/a b', 'branch "a b" is not a valid branch name'],
  ])('%j is refused', (text, message) => {
    const r = parseRemoteBranch(text);
    expect(typeof r).toBe('string');
    expect(r).toContain(message);
  });
});

describe('versions', () => {
  it.each(['0.4.0', '1.2.3-rc.1+build.5', '2025.12.16', 'v2'])('%j is accepted', (v) =>
    expect(versionProblem(v)).toBeUndefined(),
  );
  it.each(['', '-1', '1 .0', '1..0', '1.0.', '$(id)', 'x'.repeat(65), '1/2'])('%j is refused', (v) =>
    expect(versionProblem(v)).toBeDefined(),
  );
});

describe('git command lines', () => {
  const rb = { remote: 'origin', branch: 'main', text: 'origin/main' };
  it('fetch updates the tracking ref through an explicit refspec, without tags', () => {
    expect(fetchBranchArgs(rb)).toEqual([
      'fetch',
      '--no-tags',
      '--no-recurse-submodules',
      '--no-write-fetch-head',
      'origin',
      '+refs/heads/main:refs/remotes/origin/main',
    ]);
  });
  it('tagging takes the message on stdin and ends options before the name', () => {
    expect(createTagArgs('v1', 'a'.repeat(40))).toEqual([
      'tag',
      '--annotate',
      '--cleanup=whitespace',
      '--file=-',
      '--end-of-options',
      'v1',
      'a'.repeat(40),
    ]);
    expect(pushTagArgs('origin', 'v1')).toEqual([
      'push',
      '--no-verify',
      '--porcelain',
      'origin',
      'refs/tags/v1:refs/tags/v1',
    ]);
    expect(lsRemoteTagArgs('origin', 'v1')).toEqual([
      'ls-remote',
      '--tags',
      'origin',
      'refs/tags/v1',
      'refs/tags/v1^{}',
    ]);
  });
  it('history: previous release tag and subjects', () => {
    const sha = 'b'.repeat(40);
    expect(previousTagArgs(sha, 'v*', 'v2')).toEqual([
      'describe',
      '--tags',
      '--abbrev=0',
      '--match=v*',
      '--exclude=v2',
      sha,
    ]);
    expect(subjectsArgs(`refs/tags/v1..${sha}`, 5)).toEqual([
      'log',
      '--max-count=5',
      '--format=%s',
      `refs/tags/v1..${sha}`,
      '--',
    ]);
  });
  it('credentials in remote URLs are masked in what git says', () => {
    expect(
      scrubUrls("fatal: unable to access 'https://x-access-token:ghs_abc@github.com/a/b.git/': 403"),
    ).toBe("fatal: unable to access 'https://***@github.com/a/b.git/': 403");
  });
});
