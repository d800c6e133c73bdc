import { parseArgs } from 'node:util';
import { MAX_HOSTS } from './fleet/addresses';

export interface BenchOptions {
  /** fleet sizes named on the command line; empty: each scenario runs at its own default sizes */
  sizes: number[];
  /** homelab-deploy variants: undefined = the product's default concurrency, else defaults.parallel = stage parallel = K */
  parallel: (number | undefined)[];
  /** --parallel was given; without it the fleet scenarios use their own concurrency (scenarios/fleet-tools.ts) */
  parallelGiven: boolean;
  only?: 'baseline' | 'homelab';
  /** per tool run */
  timeoutMs: number;
  /** scenario names; empty = every scenario that is on by default */
  scenarios: string[];
  /** 0 = no cold start */
  coldStartHosts: number;
  coldStartRuns: number;
}

export const USAGE = `npm run bench -- [N...] [options]

  N...                  fleet sizes, each on its own sshd; every chosen scenario runs at each of them
                        (default: each scenario's own sizes: redeploy 10 100, fleet-rollout and
                        fleet-rollback 1500, vercel-fleet 200 sites, property-cost 100 500)
  --parallel K[,K...]   homelab-deploy's defaults.parallel and the stage's parallel; "default" = unset
                        (the product's default); several values run several variants (default: the
                        product's default for redeploy, 100 for the fleet scenarios)
  --only baseline|homelab   run one side only (no ratio)
  --timeout DURATION    bound on each tool run, e.g. 900, 15m (default 30m); a tool that times out is
                        skipped at the larger N of the same invocation
  --scenario NAME[,...] scenarios to run: redeploy (the default), fleet-rollout, fleet-rollback,
                        vercel-fleet, property-cost (see bench/README.md)
  --coldstart-hosts M   hosts in the generated config for the validate/plan cold start (default 1000 when
                        redeploy runs, else 0 = skip)
  --coldstart-runs R    runs per command for the cold start medians (default 7)
  -h, --help

Environment: HD_CLI=path/to/cli.js measures another bundle than dist/cli/index.js.`;

/** "90" (seconds), "90s", "15m", "1h", "500ms" → milliseconds; undefined if it is none of these. */
export function parseDurationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * factor);
}

function positiveInt(text: string, what: string, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max)
    throw new Error(`${what}: expected a whole number from 1 to ${max}, got ${JSON.stringify(text)}`);
  return Number(text);
}

export function parseOptions(argv: string[], knownScenarios: string[]): BenchOptions | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      parallel: { type: 'string' },
      only: { type: 'string' },
      timeout: { type: 'string' },
      scenario: { type: 'string' },
      'coldstart-hosts': { type: 'string' },
      'coldstart-runs': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const sizes = positionals.map((p) => positiveInt(p, 'N', MAX_HOSTS));
  const parallel = (values.parallel ?? 'default')
    .split(',')
    .map((p) => p.trim())
    .map((p) => (p === 'default' ? undefined : positiveInt(p, '--parallel', 1000)));
  if (values.only !== undefined && values.only !== 'baseline' && values.only !== 'homelab')
    throw new Error(`--only: expected "baseline" or "homelab", got ${JSON.stringify(values.only)}`);
  const timeoutMs = values.timeout === undefined ? 30 * 60_000 : parseDurationMs(values.timeout);
  if (!timeoutMs)
    throw new Error(
      `--timeout: expected a duration such as 900, 90s or 15m, got ${JSON.stringify(values.timeout)}`,
    );
  const scenarios = values.scenario
    ? values.scenario
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
  const unknown = scenarios.filter((s) => !knownScenarios.includes(s));
  if (unknown.length)
    throw new Error(`--scenario: unknown ${unknown.join(', ')}; known: ${knownScenarios.join(', ')}`);
  const hostsArg = values['coldstart-hosts'];
  const coldStartHosts =
    hostsArg === undefined
      ? scenarios.length && !scenarios.includes('redeploy')
        ? 0
        : 1000
      : hostsArg === '0'
        ? 0
        : positiveInt(hostsArg, '--coldstart-hosts', MAX_HOSTS);
  const coldStartRuns =
    values['coldstart-runs'] === undefined
      ? 7
      : positiveInt(values['coldstart-runs'], '--coldstart-runs', 100);
  return {
    sizes,
    parallel: [...new Set(parallel)],
    parallelGiven: values.parallel !== undefined,
    only: values.only as BenchOptions['only'],
    timeoutMs,
    scenarios,
    coldStartHosts,
    coldStartRuns,
  };
}
