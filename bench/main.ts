import * as fs from 'node:fs';
import * as path from 'node:path';
import { coldStartTable, measureColdStart, type ColdStart } from './coldstart';
import {
  createKeys,
  ensureSshd,
  hostSideDelta,
  killFleetsNow,
  SSHD,
  startFleet,
  type Fleet,
} from './fleet/fleet';
import { createRunState, removeRunState, sweepStaleRuns } from './fleet/state';
import { loadAverage } from './measure/proc';
import { runTool } from './measure/run-tool';
import { parseOptions, USAGE, type BenchOptions } from './options';
import { environmentLines, resultsFile } from './report/results';
import { countTable, measurementTable, renderMarkdown, renderText, timingTable } from './report/table';
import { scenariosAt, SCENARIOS, sizesToRun } from './scenarios';
import { Interrupted, type Scenario, type ScenarioContext, type ScenarioResult } from './scenarios/types';
import { baselineTool } from './tools/baseline';
import { assertCli, homelabTool } from './tools/homelab';
import type { DeployTool } from './tools/tool';
import { killStandinsNow } from './vercel/standin';

interface Section {
  scenario: Scenario;
  result: ScenarioResult;
}

/** The product's default checkpoint: a run deploying to more targets needs --yes. */
const CHECKPOINT_ABOVE = 50;

const METHOD = [
  'Timed runs: each scenario says what it times (below the table); each tool in turn on the same fleet (one OpenSSH sshd serving N loopback addresses, all on this machine), or against the Vercel stand-in for vercel-fleet.',
  "wall s: from spawning the tool to its exit. s/host = wall / N. vs baseline = wall / the ssh2 baseline's wall in the same invocation.",
  "peak RSS MB: the largest VmHWM of any process in the tool's process tree, polled every 100 ms (VmHWM only grows; a poll misses at most the last interval), not a sum.",
  "client CPU s: user + system CPU of the tool and what it waited for (the benchmark's reaped-children times around the run).",
  "server CPU s: growth of the sshd listener's own and reaped children's CPU (utime+stime+cutime+cstime): per-connection sshd, shells, sftp-server, everything they started; for vercel-fleet, the Vercel stand-in process's CPU.",
  "host procs/host: processes created on the host side during the timed run, divided by N. The sshd is the first process of its own pid namespace, so the growth of that namespace's last pid counts exactly what sshd and everything under it started (about 3 sshd processes per connection, one per channel, plus what each remote shell forks), and nothing of the client or of other users of this machine.",
  'load: the 1-minute load average when the timed run started (2 shared cores: above ~2, other work competes with the tool and the sshd).',
  "verified: targets whose end state was read back and found right: on hosts from the filesystem (current -> releases/<id>, REVISION, the env file 0600 with the release's values, the previous release recorded, no lock, no temp files; after a rollback: current, REVISION and env file of the older release); on Vercel from the stand-in's state (the project's production deployment and its domain).",
];

function stampOf(d: Date): string {
  const p = (v: number) => String(v).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function failures(sections: Section[]): string[] {
  return sections.flatMap((s) =>
    s.result.measurements.filter((m) => m.failure).map((m) => `${s.scenario.name} / ${m.tool}: ${m.failure}`),
  );
}

function markdown(
  n: number,
  when: Date,
  env: string[],
  sections: Section[],
  cold: ColdStart | undefined,
  options: BenchOptions,
  minutes: number,
): string {
  const parts = [
    `# homelab-deploy benchmark, N = ${n} (${when.toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
    '',
  ];
  parts.push(...env.map((l) => `- ${l}`));
  parts.push(
    `- invocation: sizes ${options.sizes.length ? options.sizes.join(' ') : "each scenario's own"}, parallel ${options.parallelGiven ? options.parallel.map((p) => p ?? 'default').join(',') : 'not given'}${options.only ? `, only ${options.only}` : ''}, timeout ${options.timeoutMs / 1000} s; this N took ${minutes.toFixed(1)} min`,
    ...sections.map((s) => `- scenario ${s.scenario.name}: ${s.scenario.description}`),
    '',
    renderMarkdown(measurementTable(sections.flatMap((s) => s.result.measurements))),
    '',
  );
  const timings = sections.flatMap((s) => s.result.timings);
  if (timings.length) parts.push('## Timings', '', renderMarkdown(timingTable(timings)), '');
  const counts = sections.flatMap((s) => s.result.counts ?? []);
  if (counts.length) parts.push('## Counts', '', renderMarkdown(countTable(counts)), '');
  for (const t of sections.flatMap((s) => s.result.tables ?? []))
    parts.push(`## ${t.title}`, '', renderMarkdown(t.table), '');
  const notes = sections.flatMap((s) => s.result.notes);
  const failed = failures(sections);
  if (notes.length || failed.length) {
    parts.push('## Notes', '');
    for (const line of [...notes, ...failed]) parts.push(`- ${line.replace(/\n/g, '\n  ')}`);
    parts.push('');
  }
  if (cold) {
    parts.push(
      `## Cold start (same invocation): ${cold.hosts} hosts, ${(cold.configBytes / 1024).toFixed(0)} KiB of config`,
      '',
      renderMarkdown(coldStartTable(cold)),
      '',
    );
  }
  parts.push('## How the figures are taken', '', ...METHOD.map((m) => `- ${m}`), '');
  return parts.join('\n');
}

export async function main(argv: string[], { root }: { root: string }): Promise<number> {
  let options: BenchOptions;
  try {
    const parsed = parseOptions(
      argv,
      SCENARIOS.map((s) => s.name),
    );
    if (parsed === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    options = parsed;
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      'bench: needs root: the sshd binds to the loopback device (rdomain lo, CAP_NET_RAW) and runs in a pid namespace of its own (CAP_SYS_ADMIN)\n',
    );
    return 2;
  }
  const cli = path.resolve(process.env.HD_CLI ?? path.join(root, 'dist/cli/index.js'));
  try {
    if (options.only !== 'baseline') assertCli(cli);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    return 2;
  }
  const baselineEntry = path.join(__dirname, 'baseline', 'deploy.js');
  const scenarios = options.scenarios.length
    ? SCENARIOS.filter((s) => options.scenarios.includes(s.name))
    : SCENARIOS.filter((s) => s.byDefault);
  const sizes = sizesToRun(scenarios, options.sizes);
  const t0 = Date.now();
  const log = (line: string) =>
    process.stderr.write(`[bench +${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

  const abort = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals === 1) {
      log(`${sig}: stopping the running tool, then tearing the fleet down (again to stop at once)`);
      abort.abort();
    } else {
      killFleetsNow();
      killStandinsNow();
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killFleetsNow);
  process.on('exit', killStandinsNow);

  const started = new Date();
  const resultsDir = path.join(root, 'bench', 'results');
  const logDir = path.join(resultsDir, 'logs', stampOf(started));
  fs.mkdirSync(logDir, { recursive: true });
  sweepStaleRuns(log);
  const state = createRunState();
  let exitCode = 0;
  try {
    await ensureSshd(log);
    await createKeys(state);
    const env = await environmentLines(root, cli, SSHD);
    log(`logs: ${path.relative(root, logDir)}; load ${loadAverage()}`);

    let cold: ColdStart | undefined;
    if (options.coldStartHosts > 0 && options.only !== 'baseline') {
      log(
        `cold start: validate and plan on ${options.coldStartHosts} hosts, ${options.coldStartRuns} runs each`,
      );
      cold = await measureColdStart(
        state,
        cli,
        options.coldStartHosts,
        options.coldStartRuns,
        logDir,
        abort.signal,
      );
      process.stdout.write(
        `\nCold start (${cold.hosts} hosts, config ${(cold.configBytes / 1024).toFixed(0)} KiB):\n`,
      );
      process.stdout.write(`${renderText(coldStartTable(cold))}\n`);
      for (const r of cold.rows) if (r.failure) process.stdout.write(`${r.label}: ${r.failure}\n`);
    }

    const timedOut = new Map<string, number>();
    const all: Section[] = [];
    for (const n of sizes) {
      const nStarted = Date.now();
      const here = scenariosAt(scenarios, n, options.sizes.length > 0);
      // Scenarios that bring their own servers (the Vercel stand-in) need no sshd fleet.
      const fleet = here.some((s) => s.usesFleet !== false) ? await startFleet(state, n, log) : undefined;
      const sections: Section[] = [];
      try {
        const workdir = path.join(state.dir, `work-N${n}`);
        const needFleet = (): Fleet => {
          if (!fleet) throw new Error(`N=${n}: no sshd fleet was started (no scenario at this N uses one)`);
          return fleet;
        };
        const tools: DeployTool[] = [];
        const baseline =
          fleet && options.only !== 'homelab' ? baselineTool(fleet, workdir, baselineEntry) : undefined;
        if (baseline) tools.push(baseline);
        // Above checkpoint.above targets (50 by default) a run needs --yes; older bundles without the flag
        // still work on smaller fleets.
        const yes = n > CHECKPOINT_ABOVE ? ['--yes'] : [];
        if (fleet && options.only !== 'baseline')
          for (const parallel of options.parallel)
            tools.push(homelabTool(fleet, workdir, { cli, parallel, extraArgs: yes }));
        const ctx: ScenarioContext = {
          n,
          get fleet() {
            return needFleet();
          },
          options,
          cli,
          root,
          tools,
          baseline,
          baselineWith: (properties, label) =>
            baselineTool(needFleet(), workdir, baselineEntry, { properties, label }),
          homelab: (o) => homelabTool(needFleet(), workdir, { cli, parallel: options.parallel[0], ...o }),
          timedOut,
          resetHosts() {
            needFleet().resetHosts();
            ctx.hostsAt = undefined;
          },
          workdir,
          logDir,
          signal: abort.signal,
          log: (line) => log(`N=${n} ${line}`),
          async measure(command, logName) {
            const logFile = path.join(logDir, `N${n}-${logName}.log`);
            if (fleet) await fleet.waitIdle(10_000);
            const before = fleet ? await fleet.sample() : undefined;
            const load1 = loadAverage();
            const figures = await runTool(
              { ...command, logFile, timeoutMs: options.timeoutMs },
              abort.signal,
            );
            if (!fleet || !before)
              return {
                ...figures,
                hostProcesses: NaN,
                serverCpuSeconds: NaN,
                load1,
                connectionsLeft: 0,
                logFile,
              };
            const left = abort.signal.aborted ? 0 : await fleet.waitIdle(10_000);
            const delta = hostSideDelta(before, await fleet.sample());
            return {
              ...figures,
              hostProcesses: delta.processes,
              serverCpuSeconds: delta.sshdCpuSeconds,
              load1,
              connectionsLeft: left,
              logFile,
            };
          },
        };
        for (const scenario of here) {
          log(`N=${n}: scenario ${scenario.name}`);
          sections.push({ scenario, result: await scenario.run(ctx) });
        }
      } finally {
        if (fleet) {
          await fleet.stop(path.join(logDir, `N${n}-sshd.log`));
          log(`N=${n}: fleet down`);
        }
      }
      all.push(...sections);
      const minutes = (Date.now() - nStarted) / 60_000;
      process.stdout.write(
        `\nN = ${n}:\n${renderText(measurementTable(sections.flatMap((s) => s.result.measurements)))}\n`,
      );
      const timings = sections.flatMap((s) => s.result.timings);
      if (timings.length) process.stdout.write(`\n${renderText(timingTable(timings))}\n`);
      const counts = sections.flatMap((s) => s.result.counts ?? []);
      if (counts.length) process.stdout.write(`\n${renderText(countTable(counts))}\n`);
      for (const t of sections.flatMap((s) => s.result.tables ?? []))
        process.stdout.write(`\n${t.title}:\n${renderText(t.table)}\n`);
      for (const line of [...sections.flatMap((s) => s.result.notes), ...failures(sections)])
        process.stdout.write(`${line}\n`);
      const file = resultsFile(resultsDir, n, started);
      fs.writeFileSync(file, markdown(n, started, env, sections, cold, options, minutes));
      process.stdout.write(`written: ${path.relative(root, file)}\n`);
      if (failures(sections).length) exitCode = 1;
    }
    if (sizes.length > 1) {
      process.stdout.write(
        `\nAll sizes:\n${renderText(measurementTable(all.flatMap((s) => s.result.measurements)))}\n`,
      );
    }
    if (cold?.rows.some((r) => r.failure)) exitCode = 1;
  } catch (err) {
    if (err instanceof Interrupted || abort.signal.aborted) {
      log('interrupted: fleet torn down, nothing left running');
      exitCode = 130;
    } else {
      log(`error: ${(err as Error).stack ?? String(err)}`);
      exitCode = 1;
    }
  } finally {
    killFleetsNow();
    killStandinsNow();
    removeRunState(state);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return exitCode;
}
