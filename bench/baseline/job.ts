/**
 * The safety properties of homelab-deploy that the baseline can add one by one (scenario property-cost), so the
 * cost of each is measured apart from the tool's own overhead. bench/README.md, "Safety property cost", says what
 * each one does on the host.
 */
export const PROPERTIES = [
  'remote-timeout',
  'lock-owner',
  'repair-check',
  'atomic-env',
  'rollback-point',
  'release-log',
  'verify',
  'audit',
] as const;

export type Property = (typeof PROPERTIES)[number];

/** What the benchmark hands the baseline client, as one JSON file. */
export interface BaselineJob {
  /** deploy `release`, or switch every host back to the release its last deploy recorded as previous */
  action: 'deploy' | 'rollback';
  user: string;
  privateKeyFile: string;
  knownHostsFile: string;
  /** hosts deployed at the same time */
  concurrency: number;
  release: string;
  /** the env file to upload, exactly as it must land on each host */
  envFile: string;
  minFreeKib: number;
  connectTimeoutMs: number;
  hosts: { name: string; address: string; port: number; dir: string }[];
  /** safety properties added to the plain deploy; none (the default) is the plain baseline */
  properties?: Property[];
  /** this run's id on the hosts (owner record, logs, command tokens); needed by every property */
  runToken?: string;
  /** where the BaselineResult is written as well, for the end-state check (the verify pass leaves no host state) */
  resultFile?: string;
}

/** One line of JSON on stdout when the baseline is done. */
export interface BaselineResult {
  ok: number;
  failed: { host: string; step: string; error: string }[];
  /** hosts whose second pass (property verify) read the release back on a new connection */
  reverified?: string[];
}
