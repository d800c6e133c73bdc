import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseFileCommands } from '../helpers/action-runner';
import { git, makeProject, type Project } from '../fixtures/pipeline';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';

/**
 * The action, bundled from the current sources the way `npm run build` bundles it (into a temp dir, so dist/ is
 * left alone), deploying to real SSH hosts while the GitHub API it reports to (a local stand-in reached through
 * GITHUB_API_URL, answering as GitHub documents for outages and rate limits) keeps failing. The deploy's result
 * must not change: same status, outputs and exit code as with a healthy API, one warning, and the client gives up
 * instead of holding the job.
 */
const root = path.join(__dirname, '..', '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-action-gh-'));
const bundle = path.join(work, 'action', 'index.js');
let sandbox: SshSandbox;
const projects: Project[] = [];
type Answer = { status: number; headers?: Record<string, string>; body: unknown };
let answer: () => Answer = () => ({ status: 201, body: {} });
const calls: { path: string; context: unknown; state: unknown; at: number }[] = [];
let api: http.Server;
let apiUrl: string;

beforeAll(async () => {
  // scripts/build.cjs, not ncc's CLI: the sources are ES modules and the bundle must be CommonJS, as dist/ is.
  execFileSync(
    process.execPath,
    [path.join(root, 'scripts/build.cjs'), '--entry', 'src/index.ts', '--out', path.join(work, 'action')],
    { cwd: root, stdio: 'inherit' },
  );
  sandbox = await startSshSandbox({ names: ['thinkpad', 'rtx1080', 'vps'] });
  api = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      const body = (text ? JSON.parse(text) : {}) as { context?: unknown; state?: unknown };
      calls.push({ path: req.url ?? '', context: body.context, state: body.state, at: Date.now() });
      const a = answer();
      res.writeHead(a.status, { 'content-type': 'application/json; charset=utf-8', ...a.headers });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
}, 240_000);

afterAll(async () => {
  for (const p of projects) p.stopServices();
  api?.close();
  api?.closeAllConnections();
  await sandbox?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

beforeEach(() => {
  calls.length = 0;
});

/** The bundle run the way the Actions runner runs a node24 action: INPUT_* variables and file commands. */
async function runAction(p: Project) {
  const dir = fs.mkdtempSync(path.join(work, 'run-'));
  const files = {
    GITHUB_OUTPUT: 'output',
    GITHUB_STEP_SUMMARY: 'summary',
    GITHUB_STATE: 'state',
    GITHUB_ENV: 'env',
  };
  for (const f of Object.values(files)) fs.writeFileSync(path.join(dir, f), '');
  const inputs = {
    config: 'homelab-deploy.yml',
    phase: 'all',
    ref: 'main',
    'github-token': 'ghs_testtoken123',
    statuses: 'commit-status',
  };
  const child = spawn(process.execPath, [bundle], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      RUNNER_TEMP: dir,
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: p.repo,
      GITHUB_REPOSITORY: 'jjeco/homelab',
      GITHUB_RUN_ID: '77',
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_API_URL: apiUrl,
      HD_TEST_SECRET: 'gh-test-secret',
      ...Object.fromEntries(Object.entries(files).map(([k, f]) => [k, path.join(dir, f)])),
      ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])),
    },
  });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stdout += d));
  const t0 = Date.now();
  const code = await new Promise<number | null>((r) => child.on('close', r));
  return {
    code,
    stdout,
    seconds: (Date.now() - t0) / 1000,
    outputs: parseFileCommands(fs.readFileSync(path.join(dir, 'output'), 'utf8')),
  };
}

async function project() {
  const p = await makeProject(sandbox);
  projects.push(p);
  return p;
}

/** Arrival times of the tries of each status (context and state). */
function triesPerStatus(): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const c of calls) (out[`${String(c.context)} ${String(c.state)}`] ??= []).push(c.at);
  return out;
}

const warnings = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('::warning'));

describe('the action while GitHub fails: the deploy result is the same', () => {
  it('a healthy API: success, every phase reported', async () => {
    answer = () => ({ status: 201, body: { id: 1 } });
    const p = await project();
    const run = await runAction(p);
    expect(run.code).toBe(0);
    expect(run.outputs.status).toBe('success');
    expect(warnings(run.stdout)).toEqual([]);
    const sha = git(p.repo, ['rev-parse', 'HEAD']);
    expect(calls.filter((c) => c.path === `/repos/jjeco/homelab/statuses/${sha}`).length).toBeGreaterThan(8);
  }, 240_000);

  it('5xx on every call: retried with backoff, given up after three failed calls; still success', async () => {
    answer = () => ({ status: 503, body: { message: 'Service Unavailable' } });
    const p = await project();
    const run = await runAction(p);
    expect(run.code).toBe(0);
    expect(run.outputs.status).toBe('success');
    expect(JSON.parse(run.outputs['systems-deployed'])).toEqual(['thinkpad', 'rtx1080', 'vps']);
    expect(warnings(run.stdout)).toEqual([
      '::warning::GitHub status update failed after retries (HTTP 503: Service Unavailable); the deploy result is unaffected.',
    ]);
    // The first status got its 3 tries, 1 s then 4 s apart; once three calls had failed the reporter stopped,
    // and the calls still retrying stopped with it: no status tried more than 3 times, no result status.
    const tries = triesPerStatus();
    expect(Math.max(...Object.values(tries).map((t) => t.length))).toBe(3);
    expect(Object.keys(tries).some((k) => k.startsWith('homelab-deploy/deploy/result'))).toBe(false);
    const [first] = Object.values(tries);
    expect(first).toHaveLength(3);
    expect(first[1] - first[0]).toBeGreaterThanOrEqual(900);
    expect(first[2] - first[1]).toBeGreaterThanOrEqual(3900);
  }, 240_000);

  it('429 secondary rate limit on every call: Retry-After waited for between tries, then given up; still success', async () => {
    answer = () => ({
      status: 429,
      headers: { 'retry-after': '1' },
      body: {
        message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
      },
    });
    const p = await project();
    const run = await runAction(p);
    expect(run.code).toBe(0);
    expect(run.outputs.status).toBe('success');
    expect(warnings(run.stdout)).toEqual([
      '::warning::GitHub rate-limited the status updates (HTTP 429: You have exceeded a secondary rate limit. Please wait a few minutes before you try again.); they were retried after the pauses GitHub asked for (up to 30 s), then given up. The deploy result is unaffected.',
    ]);
    const tries = triesPerStatus();
    expect(Math.max(...Object.values(tries).map((t) => t.length))).toBe(3);
    expect(Object.keys(tries).some((k) => k.startsWith('homelab-deploy/deploy/result'))).toBe(false);
    // Retry-After: 1 is honoured between the tries of one status.
    for (const t of Object.values(tries))
      for (let i = 1; i < t.length; i++) expect(t[i] - t[i - 1]).toBeGreaterThanOrEqual(900);
  }, 240_000);
});
