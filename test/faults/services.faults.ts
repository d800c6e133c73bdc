import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Report } from '../../src/report/types';
import { parseFileCommands } from '../helpers/action-runner';
import { ACTION, CliProcess } from '../helpers/faults/cli';
import { startGithubStandIn, type GithubMode } from '../helpers/faults/github-standin';
import { all, breakHealth, cell, fail, git, type Cell } from './harness';

/**
 * Services around the deploy fail: GitHub's API answers 5xx or 429 to the action's commit statuses, the
 * notification webhook refuses connections. None of it may change the deploy's result.
 */

async function runActionBundle(c: Cell, api: string) {
  const dir = fs.mkdtempSync(path.join(c.dir, 'runner-'));
  const files = {
    GITHUB_OUTPUT: 'output',
    GITHUB_STEP_SUMMARY: 'summary',
    GITHUB_STATE: 'state',
    GITHUB_ENV: 'env',
    GITHUB_PATH: 'path',
  };
  for (const f of Object.values(files)) fs.writeFileSync(path.join(dir, f), '');
  const proc = new CliProcess('action', ACTION, [], {
    cwd: c.repo,
    env: {
      ...c.env('v2'),
      RUNNER_TEMP: dir,
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: c.repo,
      GITHUB_REPOSITORY: 'example/homelab',
      GITHUB_RUN_ID: '4242',
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_ACTOR: 'octocat',
      GITHUB_API_URL: api,
      ...Object.fromEntries(Object.entries(files).map(([k, f]) => [k, path.join(dir, f)])),
      INPUT_CONFIG: 'homelab-deploy.yml',
      INPUT_PHASE: 'all',
      INPUT_REF: 'main',
      'INPUT_GITHUB-TOKEN': 'ghs_faultmatrix0000',
      INPUT_STATUSES: 'true',
      INPUT_ENVIRONMENT: 'production',
    },
  });
  const exit = await proc.exit(180_000);
  fs.writeFileSync(path.join(c.dir, 'action.log'), proc.output);
  const outputs = parseFileCommands(fs.readFileSync(path.join(dir, 'output'), 'utf8'));
  let report: Report | undefined;
  try {
    report = JSON.parse(outputs.report) as Report;
  } catch {
    report = undefined;
  }
  return { exit, outputs, report, output: proc.output };
}

for (const [fault, mode] of [
  ['GitHub API 5xx', 'down'],
  ['GitHub API 429', 'rate-limited'],
] as [string, GithubMode][]) {
  cell(fault, 'commit statuses', async (c: Cell) => {
    c.commit('v2');
    const sha = git(c.repo, ['rev-parse', 'HEAD']);
    const api = await startGithubStandIn(mode);
    try {
      const r = await runActionBundle(c, api.url);
      const problems: string[] = [];
      if (r.exit.code !== 0)
        problems.push(
          `action exit ${r.exit.code ?? r.exit.signal}, expected 0: ${r.output.split('\n').slice(-5).join(' | ')}`,
        );
      if (r.report?.status !== 'success')
        problems.push(`status ${r.report?.status ?? '(no report)'}, expected success`);
      const ours = api.calls.filter((x) => x.path === `/repos/example/homelab/statuses/${sha}`);
      if (ours.length === 0) problems.push('no commit status was attempted');
      if (!/GitHub (status update failed|rate-limited)/.test(r.output) && mode === 'down')
        problems.push('no warning that the status updates failed');
      const contexts = [...new Set(ours.map((x) => x.context))];
      for (const ctx of contexts) {
        const calls = ours.filter((x) => x.context === ctx);
        if (mode === 'down' && ctx === contexts[0] && calls.length < 2)
          problems.push(`${ctx}: a 500 was not retried (${calls.length} request)`);
        if (mode === 'rate-limited') {
          // Each context's first request was refused with Retry-After: it must be sent again, and the last state
          // that landed is the phase's (or the run's) result.
          const landed = calls.filter((x) => x.answered === 201).map((x) => x.state);
          if (landed[landed.length - 1] !== 'success')
            problems.push(
              `${ctx}: after the 429 the states that landed were [${landed.join(', ')}], expected to end with success`,
            );
        }
      }
      if (mode === 'rate-limited' && !contexts.includes('homelab-deploy/production/result'))
        problems.push(`no result status landed; contexts: ${contexts.join(', ')}`);
      fail([...problems, ...(await c.hostProblems(all('v2')))]);
    } finally {
      await api.close();
    }
  });
}

/** A local port nothing listens on: connections to it are refused. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

for (const phase of ['success', 'rollback'] as const) {
  cell('notifier down', `${phase} run`, async (c: Cell) => {
    c.commit('v2');
    if (phase === 'rollback') breakHealth(c, 'rtx1080', 'v2');
    c.writeConfig(
      (t) => t + 'notify:\n  webhook: { url_env: HD_FAULT_WEBHOOK }\n  timeout: 2s\n  retries: 1\n',
    );
    const hook = `http://127.0.0.1:${await closedPort()}/hooks/deploy`;
    const r = await c.finish(c.start('v2', [], { HD_FAULT_WEBHOOK: hook }), 'v2');
    const problems: string[] = [];
    const want = phase === 'success' ? { exit: 0, status: 'success' } : { exit: 1, status: 'rolled_back' };
    if (r.exit.code !== want.exit) problems.push(`exit ${r.exit.code}, expected ${want.exit}`);
    if (r.report?.status !== want.status)
      problems.push(`status ${r.report?.status}, expected ${want.status}`);
    if (!/notification to webhook failed/.test(r.output))
      problems.push('no warning that the webhook notification failed');
    if (r.output.includes(hook) || JSON.stringify(r.report ?? {}).includes(hook))
      problems.push('the webhook URL (a secret) appears in the output or report');
    fail([...problems, ...(await c.hostProblems(all(phase === 'success' ? 'v2' : 'v1')))]);
  });
}
