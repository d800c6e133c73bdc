import type { Property } from '../baseline/job';
import type { Fleet } from '../fleet/fleet';
import type { CommandSpec, ToolFigures } from '../measure/run-tool';
import type { BenchOptions } from '../options';
import type { Table } from '../report/table';
import type { HomelabToolOptions } from '../tools/homelab';
import type { DeployTool, PreparedRelease } from '../tools/tool';

/** A tool run measured from outside, with the server side's share. */
export interface RunFigures extends ToolFigures {
  /** processes started on the host side during the run (exact: see fleet.ts hostSideDelta); NaN without a fleet */
  hostProcesses: number;
  /** CPU of the server side: the sshd and everything it started, or the Vercel stand-in */
  serverCpuSeconds: number;
  /** 1-minute load average when the run started: the machine is shared */
  load1: number;
  /** sshd connection processes still alive 10 s after the tool exited */
  connectionsLeft: number;
}

export interface Measurement {
  tool: string;
  family: DeployTool['family'];
  /** what was measured when a scenario has several timed runs per tool (e.g. "rollout", "rollback") */
  what: string;
  n: number;
  figures?: RunFigures;
  /** targets whose end state was checked and found right; undefined when nothing was checked */
  verifiedHosts?: number;
  failure?: string;
}

/** A named duration inside a run, such as one wave of a rollout. */
export interface Timing {
  tool: string;
  label: string;
  seconds: number;
}

/** A named count of something a run did, such as the API requests a Vercel deploy made. */
export interface Count {
  tool: string;
  label: string;
  value: number;
}

export interface ScenarioResult {
  measurements: Measurement[];
  timings: Timing[];
  counts?: Count[];
  /** tables of the scenario's own, printed below the counts (property-cost's cost per property) */
  tables?: { title: string; table: Table }[];
  notes: string[];
}

/** The release a tool last left on every host of the fleet, verified, and the one before it. */
export interface HostsAt {
  tool: string;
  current: PreparedRelease;
  previous: PreparedRelease;
}

export interface ScenarioContext {
  n: number;
  /** the loopback fleet; only for scenarios that use one (reading it otherwise throws) */
  fleet: Fleet;
  options: BenchOptions;
  /** the homelab-deploy CLI being measured (HD_CLI or dist/cli/index.js) */
  cli: string;
  /** the project's folder */
  root: string;
  /** the tools chosen for this invocation (--only, --parallel), in the order they run */
  tools: DeployTool[];
  /** a homelab-deploy tool with scenario-specific config or CLI arguments */
  homelab(o: Partial<HomelabToolOptions>): DeployTool;
  /** the ssh2 baseline, unless --only homelab */
  baseline?: DeployTool;
  /** the ssh2 baseline with safety properties of homelab-deploy added (scenario property-cost) */
  baselineWith(properties: Property[], label?: string): DeployTool;
  /** tool label -> the smallest N at which it timed out in this invocation; larger fleets skip it */
  timedOut: Map<string, number>;
  /**
   * What the last scenario left on the hosts, so a later one can start from it instead of deploying twice
   * (a fleet rollback right after a fleet rollout). Cleared by resetHosts.
   */
  hostsAt?: HostsAt;
  /** Empties every host folder and forgets hostsAt. */
  resetHosts(): void;
  workdir: string;
  /** where this invocation's tool logs go */
  logDir: string;
  signal: AbortSignal;
  log(line: string): void;
  /**
   * Runs one command with the fleet's host-side counters around it (when the scenario uses the fleet); the log
   * lands in the run's log folder.
   */
  measure(
    command: Omit<CommandSpec, 'logFile' | 'timeoutMs'>,
    logName: string,
  ): Promise<RunFigures & { logFile: string }>;
}

/**
 * One entry of the scenario table (scenarios/index.ts). A scenario gets a fleet of N hosts that it may
 * reset and deploy as it likes, and returns rows for the results table, named timings, counts and notes.
 */
export interface Scenario {
  name: string;
  description: string;
  /** runs without --scenario naming it */
  byDefault: boolean;
  /** the fleet sizes it runs at when none are given on the command line */
  defaultSizes: number[];
  /** fleet sizes it makes sense for; others skip it */
  appliesTo?(n: number): boolean;
  /** false: it brings its own servers (the Vercel stand-in) and needs no sshd fleet */
  usesFleet?: boolean;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}

export class Interrupted extends Error {
  constructor() {
    super('interrupted');
  }
}
