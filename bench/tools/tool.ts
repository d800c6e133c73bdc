import type { CommandSpec } from '../measure/run-tool';

export interface HostProblems {
  host: string;
  problems: string[];
}

/** A release made ready by a tool: how to deploy it and how to check every host afterwards. */
export interface PreparedRelease {
  /** the name of the release: what REVISION holds on every host afterwards */
  release: string;
  /** what the tool calls it on the hosts (releases/<id>): the release itself, or the product's id of the commit */
  id: string;
  command: Omit<CommandSpec, 'logFile' | 'timeoutMs'>;
  /** where the tool writes its JSON report of the run, when it writes one */
  reportFile?: string;
  /** Checks each host's folder; `previous` is the release deployed before this one (undefined on fresh hosts). */
  verify(previous: PreparedRelease | undefined): HostProblems[];
}

/** A rollback of the whole fleet from one release to the one before, made ready by a tool. */
export interface PreparedRollback {
  command: Omit<CommandSpec, 'logFile' | 'timeoutMs'>;
  reportFile?: string;
  /** Checks that every host is back on `to` and nothing of the rollback is left behind. */
  verify(): HostProblems[];
}

/** One way of doing the deploy job: the product's CLI (per concurrency setting) or the ssh2 baseline. */
export interface DeployTool {
  /** how tables name it */
  label: string;
  family: 'baseline' | 'homelab';
  prepare(release: string): Promise<PreparedRelease>;
  /** Every host from `from` (deployed last) back to `to` (deployed before it), without a new release. */
  prepareRollback(from: PreparedRelease, to: PreparedRelease): PreparedRollback;
}
