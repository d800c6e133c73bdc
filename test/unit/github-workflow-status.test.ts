import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';

/**
 * deploy.yml's overall status is decided by a shell step of its `result` job. These tests run that very script,
 * read from the workflow file, the way the runner does (bash -eo pipefail, env from `needs`), for the outcomes
 * the default pipeline defines and for the jobs that never report (a rejected approval, a cancel, a crash).
 */
const root = path.join(__dirname, '..', '..');
const wf = parse(fs.readFileSync(path.join(root, '.github/workflows/deploy.yml'), 'utf8')) as {
  jobs: {
    result: {
      steps: {
        id?: string;
        uses?: string;
        run?: string;
        env?: Record<string, string>;
        with?: Record<string, string>;
      }[];
    };
  };
};
const step = wf.jobs.result.steps.find((s) => s.id === 'status');

type Job = { result: 'success' | 'failure' | 'cancelled' | 'skipped'; status?: string };
type Jobs = { staging: Job; production: Job; public: Job; verify: Job };

function decide(jobs: Jobs, opts: { reports?: boolean } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-status-'));
  const reports = path.join(dir, 'reports');
  if (opts.reports !== false) {
    fs.mkdirSync(reports);
    fs.writeFileSync(path.join(reports, 'staging.json'), '{}');
  }
  const output = path.join(dir, 'output');
  const summary = path.join(dir, 'summary');
  fs.writeFileSync(output, '');
  fs.writeFileSync(summary, '');
  // The step's env, with each ${{ needs.X.result }} / ${{ needs.X.outputs.status }} replaced as the runner would.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(step?.env ?? {})) {
    const m = /^\$\{\{ needs\.(\w+)\.(result|outputs\.status) \}\}$/.exec(v);
    const job = m && jobs[m[1] as keyof Jobs];
    env[k] = m ? ((m[2] === 'result' ? job?.result : job?.status) ?? '') : v;
  }
  const scriptFile = path.join(dir, 'step.sh');
  fs.writeFileSync(scriptFile, step?.run ?? 'exit 99');
  const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', scriptFile], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      ...env,
      REPORTS_DIR: reports,
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: summary,
    },
    encoding: 'utf8',
  });
  const out = Object.fromEntries(
    fs
      .readFileSync(output, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('=') as [string, string]),
  );
  return {
    code: r.status,
    status: out.status,
    reports: out.reports,
    log: r.stdout + r.stderr,
    summary: fs.readFileSync(summary, 'utf8'),
  };
}

const ok: Job = { result: 'success', status: 'success' };
const skipped: Job = { result: 'skipped' };

describe("deploy.yml's result job derives one truthful status", () => {
  it('finds the status step and passes every job result and status through env', () => {
    expect(step?.run).toBeDefined();
    expect(Object.values(step?.env ?? {}).sort()).toEqual(
      expect.arrayContaining(
        ['staging', 'production', 'public', 'verify'].flatMap((j) => [
          `\${{ needs.${j}.result }}`,
          `\${{ needs.${j}.outputs.status }}`,
        ]),
      ),
    );
    // The directory the script looks in is where the reports are downloaded to and merged from.
    const download = wf.jobs.result.steps.find((s) => s.uses?.startsWith('actions/download-artifact@'));
    const merge = wf.jobs.result.steps.find((s) => s.id === 'merge');
    expect(download?.with?.path).toBe(step?.env?.REPORTS_DIR);
    expect(merge?.with?.['merge-reports']).toBe(`${step?.env?.REPORTS_DIR}/*.json`);
    expect(merge?.with?.['merge-status']).toBe('${{ steps.status.outputs.status }}');
  });

  const cases: [string, Jobs, string][] = [
    ['every job succeeded', { staging: ok, production: ok, public: ok, verify: ok }, 'success'],
    [
      'staging failed',
      {
        staging: { result: 'failure', status: 'failed' },
        production: skipped,
        public: skipped,
        verify: skipped,
      },
      'failed',
    ],
    [
      'staging aborted in pre-flight',
      {
        staging: { result: 'failure', status: 'aborted' },
        production: skipped,
        public: skipped,
        verify: skipped,
      },
      'aborted',
    ],
    [
      'staging cancelled before it reported',
      { staging: { result: 'cancelled' }, production: skipped, public: skipped, verify: skipped },
      'failed',
    ],
    [
      // The old || chain fell back to staging's "success" here.
      'production approval rejected',
      { staging: ok, production: { result: 'failure' }, public: skipped, verify: skipped },
      'failed',
    ],
    [
      'production rolled back',
      {
        staging: ok,
        production: { result: 'failure', status: 'rolled_back' },
        public: skipped,
        verify: skipped,
      },
      'rolled_back',
    ],
    [
      // The old || chain took verify's "success" here.
      'the VPS failed after its retries, verify passed',
      { staging: ok, production: ok, public: { result: 'failure', status: 'failed' }, verify: ok },
      'partial_success',
    ],
    [
      'the VPS job crashed without a status, verify passed',
      { staging: ok, production: ok, public: { result: 'failure' }, verify: ok },
      'partial_success',
    ],
    [
      'the VPS failed and verify rolled everything back',
      {
        staging: ok,
        production: ok,
        public: { result: 'failure', status: 'failed' },
        verify: { result: 'failure', status: 'rolled_back' },
      },
      'rolled_back',
    ],
    [
      'verify rolled back',
      { staging: ok, production: ok, public: ok, verify: { result: 'failure', status: 'rolled_back' } },
      'rolled_back',
    ],
    [
      'verify cancelled',
      { staging: ok, production: ok, public: ok, verify: { result: 'cancelled' } },
      'failed',
    ],
    [
      'a job output that is not a status',
      { staging: ok, production: { result: 'success', status: 'weird' }, public: skipped, verify: skipped },
      'failed',
    ],
  ];
  it.each(cases.map(([name, jobs, expected]) => [name, expected, jobs] as const))(
    '%s → %s',
    (_name, expected, jobs) => {
      const r = decide(jobs);
      expect({ status: r.status, code: r.code }).toEqual({ status: expected, code: 0 });
      expect(r.log).toContain(`homelab-deploy: ${expected} (`);
    },
  );

  it('says which job decided, and how it ended', () => {
    const r = decide({ staging: ok, production: { result: 'failure' }, public: skipped, verify: skipped });
    expect(r.log).toContain("the production job ended failure with status 'none'");
  });

  it('without any report it still sets the status, writes the summary, and fails the job for a failure', () => {
    const failed = decide(
      { staging: { result: 'cancelled' }, production: skipped, public: skipped, verify: skipped },
      { reports: false },
    );
    expect(failed).toMatchObject({ code: 1, status: 'failed', reports: 'none' });
    expect(failed.summary).toContain('homelab-deploy: `failed`');
    const fine = decide({ staging: ok, production: ok, public: ok, verify: ok }, { reports: false });
    expect(fine).toMatchObject({ code: 0, status: 'success', reports: 'none' });
  });
});
