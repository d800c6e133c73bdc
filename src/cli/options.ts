/** How the shell completes an option's value. */
export type Completion = 'file' | 'phases' | 'targets' | 'none';

export interface OptionSpec {
  short?: string;
  /** Placeholder for the value in help (`FILE`); absent for flags. */
  value?: string;
  /** A flag that also takes one of these values after `=` (`--skip-tests=force`). */
  inline?: string[];
  help: string;
  complete?: Completion;
}

/** Every option of the CLI; each command says which of them apply to it (a command's own wording may differ). */
export const OPTIONS = {
  config: {
    short: 'c',
    value: 'FILE',
    help: 'config file (default: homelab-deploy.yml, else .github/homelab/deploy.yml)',
    complete: 'file',
  },
  phase: {
    short: 'p',
    value: 'SPEC',
    help: '"all" (default) or a comma-separated list: preflight, secrets, snapshot, <stage>, verify',
    complete: 'phases',
  },
  ref: {
    short: 'r',
    value: 'REF',
    help: 'git ref or commit to deploy (default: HEAD); resolved to a full SHA first',
  },
  targets: {
    short: 't',
    value: 'LIST',
    help: 'only these targets, comma-separated: names, globs (site-*) or label selectors (region=eu; region=eu,tier=web for both)',
    complete: 'targets',
  },
  json: { help: 'print JSON on stdout; progress goes to stderr' },
  'report-file': { value: 'FILE', help: 'also write the JSON report to FILE', complete: 'file' },
  'lock-wait': {
    value: 'DURATION',
    help: "wait up to DURATION (e.g. 5m) for another deploy's lock (overrides lock.wait)",
    complete: 'none',
  },
  force: { help: 'redeploy hosts where the release is already current' },
  all: { help: 'every host in the config' },
  actor: {
    value: 'NAME',
    help: 'who you are, for lock owner records and the audit log (default: $USER)',
    complete: 'none',
  },
  shards: {
    value: 'N',
    help: "print a GitHub Actions matrix splitting the hosts into N shards (1-256, GitHub's matrix limit)",
    complete: 'none',
  },
  matrix: {
    value: 'FILE',
    help: "the plan's shard matrix; shards without a report count as failed",
    complete: 'file',
  },
  summary: { help: 'print the Markdown job summary' },
  yes: {
    short: 'y',
    help: 'confirm a run above checkpoint.above targets (without it: a prompt on a terminal, refused otherwise)',
  },
  'ignore-window': { help: "deploy outside the config's deploy window (recorded in the audit trail)" },
  'wait-window': { help: 'outside the deploy window, wait for it to open instead of refusing' },
  'release-version': {
    value: 'VERSION',
    help: 'the version in the release tag (overrides release.tag.version_from), e.g. 0.4.0',
    complete: 'none',
  },
  'skip-tests': {
    inline: ['force'],
    help: "skip a stage's tests this commit already passed on the same targets; =force skips them without a record (audited)",
  },
  'no-rollback': {
    help: 'leave failed targets on the failed release for debugging (the report lists them); default: roll back',
  },
  to: {
    value: 'VERSION',
    help: '"previous" (what each target\'s rollback point names) or a release every target has (see `releases`)',
    complete: 'none',
  },
  html: { value: 'FILE', help: 'write a self-contained HTML page to FILE', complete: 'file' },
  metrics: { help: 'print the KPIs in Prometheus text format' },
  help: { short: 'h', help: 'this help' },
} satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

export const OPTION_NAMES = Object.keys(OPTIONS) as OptionName[];

export const spec = (name: OptionName): OptionSpec => OPTIONS[name];

/** `-c, --config FILE` as help and error messages show an option. */
export function optionLabel(name: OptionName): string {
  const s = spec(name);
  const inline = s.inline ? `[=${s.inline.join('|')}]` : '';
  return `${s.short ? `-${s.short}, ` : '    '}--${name}${inline}${s.value ? ` ${s.value}` : ''}`;
}

/** The values a command receives, converted and checked. */
export interface OptionValues {
  config?: string;
  phase?: string;
  ref?: string;
  targets?: string[];
  json: boolean;
  reportFile?: string;
  lockWaitMs?: number;
  force: boolean;
  all: boolean;
  actor?: string;
  shards?: number;
  matrix?: string;
  summary: boolean;
  metrics: boolean;
  yes: boolean;
  ignoreWindow: boolean;
  waitWindow: boolean;
  releaseVersion?: string;
  /** false, true, or 'force' (`--skip-tests=force`). */
  skipTests: boolean | 'force';
  noRollback: boolean;
  to?: string;
  html?: string;
}
