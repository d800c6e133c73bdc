import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { hostAddress, hostName } from './fleet/addresses';
import { renderKnownHosts } from './fleet/sshd-config';
import type { RunState } from './fleet/state';
import { runTool } from './measure/run-tool';
import type { Table } from './report/table';
import { Interrupted } from './scenarios/types';
import { logTail } from './scenarios/deploy-run';
import { ScratchRepo } from './tools/git-repo';
import { homelabConfig, renderHomelabConfig, SOURCE_DIR } from './tools/homelab-config';
import { envValues } from './workload';

export interface ColdStartRow {
  label: string;
  runs: number;
  minMs: number;
  medianMs: number;
  medianCpuMs: number;
  peakRssMib: number;
  failure?: string;
}

export interface ColdStart {
  hosts: number;
  configBytes: number;
  rows: ColdStartRow[];
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * `validate` and `plan` on a generated config of M hosts (the redeploy's config, addresses that are never
 * contacted), each run `runs` times in a row, next to `node -e 0` and `--help` (what loading Node and the
 * bundle costs before any config is read).
 */
export async function measureColdStart(
  state: RunState,
  cli: string,
  hosts: number,
  runs: number,
  logDir: string,
  signal: AbortSignal,
): Promise<ColdStart> {
  const dir = path.join(state.dir, 'coldstart');
  const fleet = Array.from({ length: hosts }, (_, k) => ({
    name: hostName(k + 1),
    address: hostAddress(k + 1),
    port: 22,
    dir: `/srv/bench/${hostName(k + 1)}`,
  }));
  fs.mkdirSync(dir, { recursive: true });
  const knownHosts = path.join(dir, 'known_hosts');
  fs.writeFileSync(
    knownHosts,
    renderKnownHosts(
      fleet.map((h) => h.address),
      22,
      fs.readFileSync(`${state.hostKey}.pub`, 'utf8'),
    ),
  );
  const release = 'coldstart';
  const text = renderHomelabConfig(
    homelabConfig({
      hosts: fleet,
      user: 'deploy',
      privateKey: state.clientKey,
      knownHosts,
      release,
      secretKeys: envValues(release).map(([k]) => k),
    }),
    `homelab-deploy benchmark: cold start on ${hosts} hosts (never contacted)`,
  );
  const repo = new ScratchRepo(path.join(dir, 'repo'));
  await repo.commit({ 'deploy.yml': text, [`${SOURCE_DIR}/REVISION`]: `${release}\n` }, 'cold start');
  const config = path.join(repo.dir, 'deploy.yml');
  // The CLI keeps V8's compiled code in the user's cache folder (dist/cli/index.js): a cache of the run's own,
  // written by each command's first run and used by the rest, and a row without it for the first-run cost.
  const cached = { ...process.env, XDG_CACHE_HOME: path.join(dir, 'cache') };
  const uncached = { ...process.env, HOMELAB_DEPLOY_COMPILE_CACHE: 'off' };
  fs.rmSync(cached.XDG_CACHE_HOME, { recursive: true, force: true });
  const validate = [cli, 'validate', '--config', config];
  const commands: [string, string, string[], NodeJS.ProcessEnv][] = [
    ['node', 'node -e 0', ['-e', '0'], cached],
    ['help', 'homelab-deploy --help', [cli, '--help'], cached],
    ['validate', `homelab-deploy validate (${hosts} hosts)`, validate, cached],
    ['validate-nocache', `homelab-deploy validate (${hosts} hosts), no code cache`, validate, uncached],
    ['plan', `homelab-deploy plan (${hosts} hosts)`, [cli, 'plan', '--config', config], cached],
  ];
  const rows: ColdStartRow[] = [];
  for (const [name, label, args, env] of commands) {
    const wall: number[] = [];
    const cpu: number[] = [];
    let rss = 0;
    let failure: string | undefined;
    const logFile = path.join(logDir, `coldstart-${name}.log`);
    for (let i = 0; i < runs && !failure; i++) {
      fs.writeFileSync(logFile, '');
      const f = await runTool(
        { command: process.execPath, args, env, cwd: repo.dir, logFile, timeoutMs: 120_000 },
        signal,
        10,
      );
      if (f.interrupted) throw new Interrupted();
      if (f.exitCode !== 0) failure = `exit ${f.exitCode ?? f.signal}:\n${logTail(logFile)}`;
      wall.push(f.wallMs);
      cpu.push(f.clientCpuSeconds * 1000);
      rss = Math.max(rss, f.peakRssKib / 1024);
    }
    rows.push({
      label,
      runs: wall.length,
      minMs: Math.min(...wall),
      medianMs: median(wall),
      medianCpuMs: median(cpu),
      peakRssMib: rss,
      failure,
    });
  }
  const action = actionBundle(cli);
  if (fs.existsSync(action)) {
    rows.push(
      await measureActionStart({ state, action, fleet, knownHostsDir: dir, release, runs, logDir, signal }),
    );
  }
  return { hosts, configBytes: Buffer.byteLength(text), rows };
}

/** The action's bundle beside the CLI's (`<dist>/index.js` for `<dist>/cli/index.js`), or HD_ACTION. */
function actionBundle(cli: string): string {
  return process.env.HD_ACTION || path.join(path.dirname(path.dirname(cli)), 'index.js');
}

/**
 * The action (`node dist/index.js` with INPUT_* variables, as the runner starts it) on the same M-host config,
 * every host pointed at one loopback listener: the time from spawning it to the first TCP connection it opens,
 * which is everything it does before touching a host (inputs, config, plan, ref resolution, masking). The
 * listener drops the connection and the action is stopped there; nothing is deployed.
 */
async function measureActionStart(o: {
  state: RunState;
  action: string;
  fleet: { name: string; dir: string }[];
  knownHostsDir: string;
  release: string;
  runs: number;
  logDir: string;
  signal: AbortSignal;
}): Promise<ColdStartRow> {
  let onConnect: (() => void) | undefined;
  const listener = net.createServer((socket) => {
    onConnect?.();
    socket.destroy();
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as net.AddressInfo).port;
  const dir = path.join(o.knownHostsDir, 'action');
  fs.mkdirSync(dir, { recursive: true });
  const knownHosts = path.join(dir, 'known_hosts');
  fs.writeFileSync(
    knownHosts,
    renderKnownHosts(['127.0.0.1'], port, fs.readFileSync(`${o.state.hostKey}.pub`, 'utf8')),
  );
  const text = renderHomelabConfig(
    homelabConfig({
      hosts: o.fleet.map((h) => ({ ...h, address: '127.0.0.1', port })),
      user: 'deploy',
      privateKey: o.state.clientKey,
      knownHosts,
      release: o.release,
      secretKeys: envValues(o.release).map(([k]) => k),
    }),
    `homelab-deploy benchmark: the action's start on ${o.fleet.length} hosts (one listener)`,
  );
  const repo = new ScratchRepo(path.join(dir, 'repo'));
  await repo.commit({ 'deploy.yml': text, [`${SOURCE_DIR}/REVISION`]: `${o.release}\n` }, 'action start');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GITHUB_WORKSPACE: repo.dir,
    GITHUB_REPOSITORY: 'bench/bench',
    GITHUB_RUN_ID: '1',
    GITHUB_STEP_SUMMARY: path.join(dir, 'summary.md'),
    GITHUB_OUTPUT: path.join(dir, 'output'),
    INPUT_CONFIG: 'deploy.yml',
    INPUT_PHASE: 'preflight',
    INPUT_STATUSES: 'false',
    INPUT_CONFIRM: 'true',
    ...Object.fromEntries(envValues(o.release)),
  };
  const wall: number[] = [];
  let failure: string | undefined;
  const logFile = path.join(o.logDir, 'coldstart-action.log');
  try {
    for (let i = 0; i < o.runs && !failure; i++) {
      if (o.signal.aborted) throw new Interrupted();
      fs.writeFileSync(path.join(dir, 'output'), '');
      const log = fs.openSync(logFile, 'w');
      const t0 = process.hrtime.bigint();
      const child = spawn(process.execPath, [o.action], { cwd: repo.dir, env, stdio: ['ignore', log, log] });
      const connected = new Promise<number>((resolve) => {
        onConnect = () => resolve(Number(process.hrtime.bigint() - t0) / 1e6);
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const first = await Promise.race([connected, exited.then(() => undefined), sleep(60_000)]);
      onConnect = undefined;
      child.kill('SIGKILL');
      await exited;
      fs.closeSync(log);
      if (typeof first === 'number') wall.push(first);
      else failure = `no connection before the action ended:\n${logTail(logFile)}`;
    }
  } finally {
    listener.close();
  }
  return {
    label: `action: start to first connection (${o.fleet.length} hosts)`,
    runs: wall.length,
    minMs: wall.length ? Math.min(...wall) : NaN,
    medianMs: wall.length ? median(wall) : NaN,
    medianCpuMs: NaN,
    peakRssMib: NaN,
    failure,
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export function coldStartTable(c: ColdStart): Table {
  return {
    header: ['command', 'runs', 'min ms', 'median ms', 'median CPU ms', 'peak RSS MB', 'result'],
    right: [false, true, true, true, true, true, false],
    rows: c.rows.map((r) => [
      r.label,
      String(r.runs),
      r.minMs.toFixed(0),
      r.medianMs.toFixed(0),
      Number.isNaN(r.medianCpuMs) ? '–' : r.medianCpuMs.toFixed(0),
      Number.isNaN(r.peakRssMib) ? '–' : r.peakRssMib.toFixed(0),
      r.failure ? 'FAILED' : 'ok',
    ]),
  };
}
