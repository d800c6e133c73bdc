import * as fs from 'node:fs';
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
  const commands: [string, string, string[]][] = [
    ['node', 'node -e 0', ['-e', '0']],
    ['help', 'homelab-deploy --help', [cli, '--help']],
    ['validate', `homelab-deploy validate (${hosts} hosts)`, [cli, 'validate', '--config', config]],
    ['plan', `homelab-deploy plan (${hosts} hosts)`, [cli, 'plan', '--config', config]],
  ];
  const rows: ColdStartRow[] = [];
  for (const [name, label, args] of commands) {
    const wall: number[] = [];
    const cpu: number[] = [];
    let rss = 0;
    let failure: string | undefined;
    const logFile = path.join(logDir, `coldstart-${name}.log`);
    for (let i = 0; i < runs && !failure; i++) {
      fs.writeFileSync(logFile, '');
      const f = await runTool(
        { command: process.execPath, args, cwd: repo.dir, logFile, timeoutMs: 120_000 },
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
  return { hosts, configBytes: Buffer.byteLength(text), rows };
}

export function coldStartTable(c: ColdStart): Table {
  return {
    header: ['command', 'runs', 'min ms', 'median ms', 'median CPU ms', 'peak RSS MB', 'result'],
    right: [false, true, true, true, true, true, false],
    rows: c.rows.map((r) => [
      r.label,
      String(r.runs),
      r.minMs.toFixed(0),
      r.medianMs.toFixed(0),
      r.medianCpuMs.toFixed(0),
      r.peakRssMib.toFixed(0),
      r.failure ? 'FAILED' : 'ok',
    ]),
  };
}
