import { entryMarker, findEntry, insertEntry, renderEntry } from '../../src/release/changelog';
import { releaseSkipReason, syncApplies } from '../../src/release/steps';
import { syncProblem } from '../../src/release/sync';
import { renderTagMessage, renderTagName, tagGlob } from '../../src/release/tag-templates';
import type { ReleaseSettings } from '../../src/release/types';
import { parseVersionFile } from '../../src/release/version';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('sync verdict', () => {
  const facts = { commit: A, tip: B, contains: false, behind: 3, ahead: 0, shallow: false, fetched: true };
  it('accepts a commit containing the tip', () => {
    expect(syncProblem({ ...facts, contains: true, behind: 0, ahead: 4 }, 'origin/main')).toBeUndefined();
  });
  it('names both SHAs, the count and what to do', () => {
    expect(syncProblem(facts, 'origin/main')).toBe(
      `release.sync.with: commit ${A} does not contain the tip of origin/main (${B}): it is 3 commits behind origin/main. ` +
        'Bring it up to date: merge origin/main into the branch (git merge origin/main) or rebase onto it (git rebase origin/main), push, and deploy the new commit.',
    );
    expect(syncProblem({ ...facts, behind: 1, ahead: 2 }, 'origin/main')).toContain(
      'it is 1 commit behind origin/main and 2 ahead (the two have diverged)',
    );
    expect(syncProblem({ ...facts, fetched: false }, 'origin/main')).toContain(
      '(origin/main as last fetched: release.sync.fetch is off)',
    );
    expect(syncProblem({ ...facts, shallow: true }, 'origin/main')).toContain(
      'it appears to be 3 commits behind',
    );
  });
});

describe('tag templates', () => {
  const values = {
    version: '0.4.0',
    releaseId: A.slice(0, 12),
    commit: A,
    project: 'afu9',
    ref: 'main',
    date: '2025-12-16',
  };
  it('renders name and message; a run without URL says so', () => {
    expect(renderTagName('v{{version}}', values)).toBe('v0.4.0');
    expect(renderTagName('{{project}}/{{version}}', values)).toBe('afu9/0.4.0');
    expect(
      renderTagMessage('{{tag}} {{short_commit}} {{date}} {{run_url}}', { ...values, tag: 'v0.4.0' }),
    ).toBe(`v0.4.0 ${A.slice(0, 12)} 2025-12-16 a run without a URL (the CLI)`);
  });
  it('a rendered name git would refuse is an error naming the key', () => {
    expect(() => renderTagName('v{{version}}', { ...values, version: '1..2' })).toThrow(
      'release.tag.name: tag name "v1..2" is not valid: it contains ".."',
    );
  });
  it('the glob of earlier releases', () => {
    expect(tagGlob('v{{version}}')).toBe('v*');
    expect(tagGlob('{{project}}-{{ version }}')).toBe('*-*');
  });
});

describe('version files', () => {
  it('package.json version, VERSION first line', () => {
    expect(parseVersionFile('{"name":"x","version":"1.2.3"}', 'json', 'package.json')).toBe('1.2.3');
    expect(parseVersionFile('\uFEFF\n  2.0.0-rc.1 \nnotes\n', 'text', 'VERSION')).toBe('2.0.0-rc.1');
  });
  it.each([
    ['{"name":"x"}', 'json', 'release.tag.version_from: package.json has no "version" string (found none)'],
    ['{"version":4}', 'json', 'release.tag.version_from: package.json has no "version" string (found 4)'],
    ['{', 'json', 'release.tag.version_from: package.json is not valid JSON'],
    ['\n\n', 'text', 'release.tag.version_from: package.json is empty'],
    ['1.0 beta', 'text', 'expected a version such as 0.4.0'],
  ] as const)('%j (%s) is refused', (text, format, message) => {
    expect(() => parseVersionFile(text, format, 'package.json')).toThrow(message);
  });
});

describe('changelog entries', () => {
  const entry = {
    tag: 'v0.4.0',
    commit: A,
    releaseId: A.slice(0, 12),
    date: '2025-12-16',
    previousTag: 'v0.3.0',
    subjects: ['fix: a <b> & c', 'feat:\tmulti  space'],
    total: 2,
  };
  it('renders heading, marker, subjects', () => {
    expect(renderEntry(entry)).toBe(
      [
        '## v0.4.0 (2025-12-16)',
        '',
        `<!-- homelab-deploy release tag=v0.4.0 commit=${A} -->`,
        `Commit \`${A.slice(0, 12)}\` · changes since v0.3.0:`,
        '',
        '- fix: a &lt;b> & c',
        '- feat: multi space',
        '',
      ].join('\n'),
    );
    expect(renderEntry({ ...entry, subjects: [], total: 0 })).toContain('- no commits since v0.3.0\n');
  });
  it('finds its entry by marker; a subject cannot fake one', () => {
    const text = insertEntry('# Log\n', renderEntry(entry), 'bottom');
    expect(findEntry(text, 'v0.4.0')).toBe(A);
    expect(findEntry(text, 'v0.4')).toBeUndefined();
    const faked = renderEntry({ ...entry, tag: 'v0.5.0', subjects: [entryMarker('v9', B)], total: 1 });
    expect(findEntry(faked, 'v9')).toBeUndefined();
    expect(entryMarker('a-->b', A)).toBe(`<!-- homelab-deploy release tag=a--%3Eb commit=${A} -->`);
  });
  it('inserts at the bottom or before the first entry', () => {
    expect(insertEntry('', 'E\n', 'bottom')).toBe('E\n');
    expect(insertEntry('# T', 'E\n', 'bottom')).toBe('# T\n\nE\n');
    expect(insertEntry('# T\n\n', 'E\n', 'bottom')).toBe('# T\n\nE\n');
    expect(insertEntry('# T\n\n## old\n', '## new\n', 'top')).toBe('# T\n\n## new\n\n## old\n');
    expect(insertEntry('## old\n', '## new\n', 'top')).toBe('## new\n\n## old\n');
    expect(insertEntry('# T only\n', '## new\n', 'top')).toBe('# T only\n\n## new\n');
  });
});

describe('when the steps run', () => {
  const s: ReleaseSettings = {
    onStage: 'production',
    sync: { remote: 'origin', branch: 'main', fetch: true, fetchTimeoutMs: 1, stages: [] },
  };
  it('after the release stage passed and the deploy kept it', () => {
    const ok = [
      { name: 'staging', status: 'ok' as const },
      { name: 'production', status: 'ok' as const },
    ];
    expect(releaseSkipReason(s, 'success', ok)).toBeUndefined();
    expect(
      releaseSkipReason(s, 'partial_success', [...ok, { name: 'public', status: 'failed' }]),
    ).toBeUndefined();
    expect(releaseSkipReason(s, 'rolled_back', ok)).toBe(
      'the deploy ended rolled_back, so production may not run this release',
    );
    expect(releaseSkipReason(s, 'failed', [{ name: 'production', status: 'rolled_back' }])).toBe(
      'stage production did not succeed (rolled_back)',
    );
    expect(releaseSkipReason(s, 'success', [{ name: 'staging', status: 'ok' }])).toBe(
      'stage production was not part of this run',
    );
  });
  it('the sync check: any deploying run, or the listed stages only', () => {
    expect(syncApplies(s, ['production'])).toBe(true);
    expect(syncApplies(s, [])).toBe(false);
    const narrow = { ...s, sync: { ...s.sync!, stages: ['staging'] } };
    expect(syncApplies(narrow, ['production'])).toBe(false);
    expect(syncApplies(narrow, ['staging', 'production'])).toBe(true);
    expect(syncApplies({ onStage: 'production' }, ['staging'])).toBe(false);
  });
});
