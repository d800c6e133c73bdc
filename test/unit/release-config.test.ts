import { releaseSchema, resolveRelease, type ReleaseIssue } from '../../src/release/config';

const STAGES = ['staging', 'production', 'public'];

function resolve(raw: unknown, stages = STAGES) {
  const parsed = releaseSchema.safeParse(raw);
  if (!parsed.success)
    throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const issues: ReleaseIssue[] = [];
  const settings = resolveRelease(parsed.data, '/srv/repo/deploy', stages, issues);
  return { settings, issues };
}

function schemaIssues(raw: unknown): string[] {
  const r = releaseSchema.safeParse(raw);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('release config', () => {
  it('fills the defaults', () => {
    const { settings, issues } = resolve({
      sync: { with: 'origin/main' },
      tag: {},
      changelog: { file: '../CHANGELOG.md' },
    });
    expect(issues).toEqual([]);
    expect(settings).toEqual({
      onStage: 'production',
      sync: { remote: 'origin', branch: 'main', fetch: true, fetchTimeoutMs: 60_000, stages: [] },
      tag: {
        name: 'v{{version}}',
        version: { kind: 'file', path: '/srv/repo/deploy/package.json', format: 'json', as: 'package.json' },
        message: expect.stringContaining('{{tag}}'),
        push: true,
        remote: 'origin',
        timeoutMs: 60_000,
      },
      changelog: { file: '/srv/repo/CHANGELOG.md', position: 'bottom', maxEntries: 200 },
    });
  });

  it('takes every option', () => {
    const { settings, issues } = resolve({
      on_stage: 'public',
      sync: { with: 'upstream/release/1.x', fetch: false, fetch_timeout: '10s', stages: ['staging'] },
      tag: {
        name: 'app-{{version}}',
        version_from: 'VERSION',
        message: 'Release {{tag}} {{run_url}} {{date}}',
        push: false,
        remote: 'upstream',
        timeout: '2m',
      },
      changelog: { file: '/var/releases/CHANGELOG.md', position: 'top', max_entries: 20 },
    });
    expect(issues).toEqual([]);
    expect(settings).toMatchObject({
      onStage: 'public',
      sync: {
        remote: 'upstream',
        branch: 'release/1.x',
        fetch: false,
        fetchTimeoutMs: 10_000,
        stages: ['staging'],
      },
      tag: {
        name: 'app-{{version}}',
        version: { kind: 'file', format: 'text', path: '/srv/repo/deploy/VERSION' },
        push: false,
        remote: 'upstream',
        timeoutMs: 120_000,
      },
      changelog: { file: '/var/releases/CHANGELOG.md', position: 'top', maxEntries: 20 },
    });
    expect(resolve({ tag: { version_from: 'input' } }).settings?.tag?.version).toEqual({ kind: 'input' });
  });

  it('without a production stage, releases after the last stage', () => {
    expect(resolve({ tag: {} }, ['test', 'live']).settings?.onStage).toBe('live');
  });

  it('refuses bad values in the schema, by key', () => {
    expect(schemaIssues({ sync: { with: 'main' } })).toEqual([
      'sync.with: expected <remote>/<branch> such as origin/main, got "main"',
    ]);
    expect(schemaIssues({ sync: { with: 'origin/main', fetch_timeout: 'soon' } })).toEqual([
      'sync.fetch_timeout: expected a duration such as "30s" or "2m", got "soon"',
    ]);
    expect(schemaIssues({ tag: { remote: '--upload-pack=x' } })[0]).toContain(
      'tag.remote: remote "--upload-pack=x" is not a remote name',
    );
    expect(schemaIssues({ tag: { nmae: 'v{{version}}' } })[0]).toContain('nmae');
    expect(schemaIssues({ changelog: { file: 'a\nb' } })).toEqual([
      'changelog.file: a file name cannot contain a line break',
    ]);
  });

  it('cross-checks stages, placeholders, tag name shape and the changelog needing a tag', () => {
    const { issues } = resolve({
      on_stage: 'prod',
      sync: { with: 'origin/main', stages: ['stagin'] },
      tag: { name: 'v{{verison}}', message: 'Release {{tag}} by {{actor}}' },
      changelog: { file: 'CHANGELOG.md' },
    });
    expect(issues).toEqual([
      { path: 'release.on_stage', message: 'no stage "prod"; stages are staging, production, public' },
      { path: 'release.sync.stages.0', message: 'no stage "stagin"; stages are staging, production, public' },
      {
        path: 'release.tag.name',
        message:
          'unknown placeholder {{verison}}; a tag name can use {{version}}, {{release}}, {{commit}}, {{short_commit}}, {{project}}',
      },
      {
        path: 'release.tag.message',
        message: expect.stringMatching(
          /^unknown placeholder \{\{actor\}\}; a tag message can use .*\{\{run_url\}\}/,
        ),
      },
    ]);
    expect(resolve({ tag: { name: 'v {{version}}' } }).issues).toEqual([
      {
        path: 'release.tag.name',
        message:
          'it makes tag names such as "v 1.2.3", which git refuses: it contains a control character or space (not allowed: space, control characters, ~ ^ : ? * [ \\)',
      },
    ]);
    expect(resolve({ tag: { name: 'latest' } }).issues[0].message).toContain('names every release alike');
    expect(resolve({ tag: { name: 'v{{date}}' } }).issues[0].message).toContain(
      'unknown placeholder {{date}}',
    );
    expect(resolve({ changelog: { file: 'CHANGELOG.md' } }).issues).toEqual([
      {
        path: 'release.changelog',
        message:
          'a changelog needs release.tag: each entry is headed by the release tag and lists the commits since the previous one',
      },
    ]);
  });
});
