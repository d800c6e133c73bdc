import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The action's TypeScript sources under GitHub's local runner for actions (@github/local-action), run the way the
 * README tells a developer to: `local-action run . src/action/main.ts .env`. local-action loads them (as ES
 * modules: the package is "type": "module") with its own recorder in place of @actions/core, and prints what the
 * action set. A dry run must read its inputs from INPUT_* variables as the runner sets them, plan, write the job
 * summary, set every output, and connect nowhere.
 */
const root = path.join(__dirname, '..', '..');
/** local-action's bin: the devDependency's, or HD_LOCAL_ACTION_BIN (a node_modules/.bin folder that has it). */
const binDir = process.env.HD_LOCAL_ACTION_BIN || path.join(root, 'node_modules', '.bin');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-local-action-'));
let listener: net.Server;
let port: number;
let connections = 0;

interface LocalRun {
  code: number | null;
  stdout: string;
}

function runLocalAction(envFile: string): Promise<LocalRun> {
  const env: NodeJS.ProcessEnv = {
    // The same Node runs local-action and the action; local-action finds tsx through npm exec in node_modules/.bin.
    PATH: [path.dirname(process.execPath), binDir, process.env.PATH].join(path.delimiter),
    HOME: process.env.HOME,
    // Everything it needs is installed: a request to the registry would be a failure in CI.
    npm_config_offline: 'true',
    npm_config_update_notifier: 'false',
  };
  // local-action swaps @actions/core by its path under node_modules as npm lists it, and Node's ES-module loader
  // resolves symlinks: where node_modules is a symlink (a git worktree sharing another's), the swap would miss.
  if (fs.lstatSync(path.join(root, 'node_modules')).isSymbolicLink())
    env.NODE_OPTIONS = '--preserve-symlinks';
  const child = spawn(
    process.execPath,
    [path.join(binDir, 'local-action'), 'run', '.', 'src/action/main.ts', envFile],
    { cwd: root, env },
  );
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stdout += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout })));
}

/** The rows of the table local-action prints under "Action Outputs": what the action set, as it recorded it. */
function printedOutputs(stdout: string): Record<string, string> {
  const section = stdout.slice(stdout.lastIndexOf('Action Outputs'));
  const rows = [...section.matchAll(/^│\s*\d+\s*│\s*'([^']*)'\s*│\s*'([^']*)'\s*│$/gm)];
  return Object.fromEntries(rows.map((m) => [m[1], m[2]]));
}

beforeAll(async () => {
  if (!fs.existsSync(path.join(binDir, 'local-action')))
    throw new Error(
      `@github/local-action is not installed in ${binDir}: run npm ci (it is a devDependency), or point HD_LOCAL_ACTION_BIN at a node_modules/.bin folder that has it.`,
    );
  // The staging host points here: a dry run must never connect.
  listener = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  port = (listener.address() as net.AddressInfo).port;
});

afterAll(async () => {
  if (listener) await new Promise<void>((r) => listener.close(() => r()));
  fs.rmSync(work, { recursive: true, force: true });
});

it('runs a dry run of the action sources through local-action: plan, summary and outputs, no connection', async () => {
  fs.writeFileSync(
    path.join(work, 'deploy.yml'),
    `version: 1
project: app
defaults:
  ssh: { user: deploy, key: ~/.ssh/id_ed25519, known_hosts: known_hosts }
hosts:
  thinkpad: { address: 127.0.0.1, stage: staging, ssh: { port: ${port} } }
  vps: { address: vps.example.com, stage: public }
`,
  );
  fs.writeFileSync(path.join(work, 'known_hosts'), '');
  const summary = path.join(work, 'summary.md');
  const envFile = path.join(work, '.env');
  fs.writeFileSync(
    envFile,
    [
      `INPUT_CONFIG=${path.join(work, 'deploy.yml')}`,
      'INPUT_PHASE=staging',
      'INPUT_DRY-RUN=true',
      `GITHUB_STEP_SUMMARY=${summary}`,
      `RUNNER_TEMP=${work}`,
    ].join('\n') + '\n',
  );

  const r = await runLocalAction(envFile);
  if (r.code !== 0) throw new Error(`local-action exited with ${r.code}:\n${r.stdout}`);
  // Only the staging phase's hosts, as INPUT_PHASE asked; vps (public) is not in the plan.
  expect(r.stdout).toContain('Plan for app (1 target):');
  expect(r.stdout).toContain('1. preflight [thinkpad]');
  expect(r.stdout).toContain('3. staging [thinkpad]');
  expect(r.stdout).not.toContain('[vps]');
  expect(printedOutputs(r.stdout)).toEqual({
    status: 'success',
    phase: 'plan',
    'systems-deployed': '[]',
    'duration-seconds': '0',
    'needs-attention': '[]',
    escalated: 'false',
  });
  const written = fs.readFileSync(summary, 'utf8');
  expect(written).toContain('<h2>homelab-deploy plan (dry run)</h2>');
  expect(written).toContain('3. staging [thinkpad]');
  expect(connections).toBe(0);
}, 180_000);
