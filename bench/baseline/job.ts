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
}

/** One line of JSON on stdout when the baseline is done. */
export interface BaselineResult {
  ok: number;
  failed: { host: string; step: string; error: string }[];
}
