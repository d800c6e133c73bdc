import { z } from 'zod';
import { releaseSchema } from '../release/config';
import { ERROR_CLASSES } from '../errors';
import { parseDuration, parseSize } from '../util/duration';

/**
 * The config file's shape. Every object is strict so a typo is an error, never a silently ignored key.
 * Durations and sizes are accepted as human strings and normalised to milliseconds / bytes here, once.
 */

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration such as "30s", "5m" or "250ms", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return ms;
});

const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const bytes = parseSize(v);
  if (bytes === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a size such as "10GB" or "512MiB", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return bytes;
});

function httpUrlSchema() {
  return z.string().regex(/^https?:\/\/[^\s]+$/, 'expected an http(s) URL');
}

export const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const name = (what: string) =>
  z.string().regex(NAME_RE, `expected a ${what} name of lower-case letters, digits, '-' or '_' (max 63)`);

/**
 * Why a path that ends up in remote scripts is refused, or undefined when it is fine. Scripts quote the path, but it
 * also reaches messages, `display` lines and other tools' shells; a plain absolute path of ordinary characters is
 * safe in all of them, so nothing else is accepted.
 */
export function unsafePathReason(value: string): string | undefined {
  if (!value.startsWith('/'))
    return `expected an absolute path such as /srv/homelab/app, got ${JSON.stringify(value)}`;
  if (/[\r\n]/.test(value)) return 'a path cannot contain a line break';
  // An allow-list, not a deny-list: $ ` ' " \ ; & | < > ( ) * ? [ ] ! # ~ spaces and non-ASCII all stop here.
  const odd = /[^A-Za-z0-9._/+@%,:=-]/.exec(value);
  if (odd)
    return `${JSON.stringify(value)} contains ${JSON.stringify(odd[0])}; use letters, digits and . _ - + @ % , : = /`;
  if (value.split('/').includes('..'))
    return `${JSON.stringify(value)} has a ".." segment; give the real path`;
  if (/^\/+$/.test(value)) return 'the filesystem root cannot be a deploy path';
  if (value.length > 1024) return 'a path longer than 1024 characters is not accepted';
  return undefined;
}

const remotePath = z.string().superRefine((v, ctx) => {
  const why = unsafePathReason(v);
  if (why) ctx.addIssue({ code: 'custom', message: why });
});

/** Words of a command line that runs unquoted on the host: a program and plain arguments, no shell syntax. */
const COMMAND_WORDS_RE = /^[A-Za-z0-9_./:@%+=-]+( +[A-Za-z0-9_./:@%+=-]+)*$/;

/** Environment variable names: secrets and keys are referenced by name, never written into the config. */
const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name such as SSH_KEY');

const sshSchema = z.strictObject({
  user: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  key: z.string().min(1).optional().describe('path to the private key file'),
  key_env: envName.optional().describe('name of an environment variable holding the private key'),
  passphrase_env: envName.optional(),
  known_hosts: z.string().min(1).optional(),
  fingerprints: z
    .array(
      z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'expected an OpenSSH fingerprint like SHA256:...'),
    )
    .optional(),
  connect_timeout: duration.optional(),
  command_timeout: duration.optional(),
  keepalive_interval: duration.optional(),
  keepalive_count: z.number().int().min(1).max(100).optional(),
  // One channel of the budget is reserved for killing timed-out and cancelled commands (see remote/connection.ts).
  max_channels: z.number().int().min(2).max(64).optional(),
  jump: name('host').optional(),
});
export type SshInput = z.infer<typeof sshSchema>;

const composeSchema = z.strictObject({
  command: z
    .string()
    .regex(
      COMMAND_WORDS_RE,
      'expected a program and plain arguments such as "docker compose" or "podman-compose" (it runs unquoted on the host, so no quotes, $, ;, | or other shell syntax)',
    )
    .optional(),
  files: z.array(z.string().min(1)).min(1).optional(),
  pull: z.boolean().optional(),
  up_flags: z.array(z.string()).optional(),
  down_flags: z.array(z.string()).optional(),
});

const deploySchema = z.strictObject({
  strategy: z.enum(['compose', 'command']).optional(),
  compose: composeSchema.optional(),
  up: z.string().min(1).optional(),
  down: z.string().min(1).optional(),
  timeout: duration.optional(),
});
export type DeployInput = z.infer<typeof deploySchema>;

const expectSchema = z.strictObject({
  status: z.union([z.number().int(), z.array(z.number().int()).min(1)]).optional(),
  body: z.string().optional(),
  body_regex: z.string().optional(),
  json: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).optional(),
  max_response_time: duration.optional(),
  release: z
    .string()
    .regex(
      /^(header|json):[A-Za-z0-9_.-]+$/,
      'expected "header:<name>" or "json:<path>" naming where the answer carries the release id',
    )
    .optional(),
  exit_code: z.number().int().optional(),
  output: z.string().optional(),
  output_regex: z.string().optional(),
});

const KINDS = ['http', 'tcp', 'command', 'compose'] as const;

export const healthCheckSchema = z
  .strictObject({
    name: z.string().min(1).optional(),
    http: z.string().min(1).optional(),
    tcp: z
      .string()
      .regex(/^[^\s:]+:\d+$|^\{\{.*\}\}:\d+$|^.*:\{\{.*\}\}$/, 'expected "host:port"')
      .optional(),
    command: z.string().min(1).optional(),
    compose: z.union([z.literal(true), z.array(z.string().min(1)).min(1)]).optional(),
    method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'OPTIONS']).optional(),
    headers: z.record(z.string(), z.string()).optional(),
    ca_file: z.string().min(1).optional(),
    expect: expectSchema.optional(),
    timeout: duration.optional(),
    interval: duration.optional(),
    retries: z.number().int().min(0).max(1000).optional(),
    successes: z.number().int().min(1).max(100).optional(),
    start_period: duration.optional(),
    deadline: duration.optional(),
  })
  .superRefine((v, ctx) => {
    const set = KINDS.filter((k) => v[k] !== undefined);
    if (set.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `a health check needs exactly one of ${KINDS.map((k) => `"${k}"`).join(', ')}${set.length ? `, got ${set.join(' and ')}` : ''}`,
      });
    }
    for (const re of [v.expect?.body_regex, v.expect?.output_regex]) {
      if (re === undefined) continue;
      try {
        new RegExp(re);
      } catch (e) {
        ctx.addIssue({
          code: 'custom',
          path: ['expect'],
          message: `invalid regular expression ${JSON.stringify(re)}: ${(e as Error).message}`,
        });
      }
    }
  });
export type HealthCheckInput = z.infer<typeof healthCheckSchema>;

const retrySchema = z.strictObject({
  attempts: z.number().int().min(1).max(20).optional(),
  delay: duration.optional(),
  factor: z.number().min(1).max(10).optional(),
  max_delay: duration.optional(),
  jitter: z.number().min(0).max(1).optional(),
  on: z.array(z.enum(ERROR_CLASSES)).optional(),
});

const testsSchema = z.strictObject({
  run: z.string().min(1),
  junit: z
    .string()
    .min(1)
    .optional()
    .describe('path of a JUnit XML file the tests write (relative to the release dir, or the runner cwd)'),
  on: z.string().min(1).optional().describe('"runner" or a host name of the stage'),
  timeout: duration.optional(),
});

/** A wave's size: a count of targets, or a percentage of the stage ("10%"). */
const waveSize = z.union([
  z.number().int().min(1),
  z
    .string()
    .regex(/^(100|[1-9][0-9]?)(\.[0-9]+)?%$/, 'expected a count such as 10 or a percentage such as "10%"'),
]);

const rolloutSchema = z.strictObject({
  waves: z.array(waveSize).min(1).describe('wave sizes; the last one repeats until every target is done'),
  pause: duration.optional().describe('wait between waves'),
  soak: duration.optional().describe('after a wave, wait this long and check its targets again'),
  max_fail_percentage: z.number().min(0).max(100).optional(),
  max_fail: z.number().int().min(0).optional(),
  on_budget_exceeded: z.enum(['rollback-failed', 'rollback-wave', 'rollback-all']).optional(),
  preflight: z.enum(['per-target', 'all']).optional(),
});

/** A stage's targets: names, globs (`site-*`) or label selectors (`region=eu`, `tier!=canary`). */
const selector = z
  .string()
  .regex(
    new RegExp(`${NAME_RE.source}|^.*[*?=,].*$`),
    "expected a host name of lower-case letters, digits, '-' or '_' (max 63)",
  )
  .regex(
    /^[a-z0-9][a-z0-9_-]{0,62}$|^[A-Za-z0-9_.*?/-]+(!?=[A-Za-z0-9_.:*?/-]*)?(,[A-Za-z0-9_.*?/-]+(!?=[A-Za-z0-9_.:*?/-]*)?)*$/,
    'expected a target name, a glob such as "site-*", or a label selector such as "region=eu"',
  );

const stageSchema = z.strictObject({
  name: name('stage'),
  hosts: z.array(selector).min(1),
  health: z.array(healthCheckSchema).optional(),
  tests: testsSchema.optional(),
  retry: retrySchema.optional(),
  on_failure: z.enum(['rollback-stage', 'rollback-all']).optional(),
  parallel: z.number().int().min(1).max(1000).optional(),
  rollout: rolloutSchema.optional(),
});
export type StageInput = z.infer<typeof stageSchema>;

const snapshotSchema = z
  .strictObject({
    proxmox: z
      .strictObject({
        api: z
          .string()
          .regex(/^https:\/\/[^/\s]+\/?$/, 'expected the API base URL, e.g. https://pve.example.com:8006'),
        node: z
          .string()
          .regex(
            /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/,
            'expected a Proxmox node name (letters, digits, "-")',
          ),
        vmid: z.number().int().min(100).max(999_999_999),
        type: z.enum(['qemu', 'lxc']).optional(),
        token_env: envName.describe('environment variable holding USER@REALM!TOKENID=SECRET'),
        ca_file: z.string().min(1).optional(),
        fingerprint: z
          .string()
          .regex(/^([0-9A-Fa-f]{2}:?){32}$/, 'expected a SHA-256 certificate fingerprint like AB:CD:...')
          .optional(),
        timeout: duration.optional(),
        task_timeout: duration.optional(),
      })
      .optional(),
    command: z
      .strictObject({
        create: z.string().min(1),
        rollback: z.string().min(1),
        delete: z.string().min(1).optional(),
      })
      .optional(),
    keep: z.number().int().min(1).max(100).optional(),
    rollback: z.boolean().optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.proxmox === undefined) === (v.command === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'a snapshot needs exactly one provider: "proxmox" or "command"',
      });
    }
    if (v.proxmox && !v.proxmox.ca_file && !v.proxmox.fingerprint) {
      ctx.addIssue({
        code: 'custom',
        path: ['proxmox'],
        message: 'set "ca_file" or "fingerprint": the API token is only sent to a verified server',
      });
    }
  });
export type SnapshotInput = z.infer<typeof snapshotSchema>;

const hostDefaultsShape = {
  snapshot: snapshotSchema.optional(),
  ssh: sshSchema.optional(),
  path: remotePath.optional(),
  deploy: deploySchema.optional(),
  runtime_check: z.string().min(1).optional(),
  min_free_disk: size.optional(),
  keep_releases: z.number().int().min(1).max(100).optional(),
};

const stageTag = z.enum(['staging', 'production', 'public']);
const varsSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));
/** Labels select targets (`--targets region=eu`) and group a fleet's report; values are plain words. */
const labelsSchema = z.record(
  z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$/,
      'expected a label name of letters, digits, "_", "-", ".", "/"',
    ),
  z.union([
    z
      .string()
      .regex(
        /^[A-Za-z0-9_.:/-]{0,63}$/,
        'expected a label value of letters, digits, "_", "-", ".", ":", "/"',
      ),
    z.number(),
    z.boolean(),
  ]),
);

export const hostSchema = z.strictObject({
  // No leading "-": the address reaches commands through {{host.address}}, where it must not read as an option.
  address: z.string().regex(/^[A-Za-z0-9[][A-Za-z0-9.:[\]_-]*$/, 'expected a host name or IP address'),
  stage: stageTag.optional(),
  vars: varsSchema.optional(),
  labels: labelsSchema.optional(),
  ...hostDefaultsShape,
});
export type HostInput = z.infer<typeof hostSchema>;

/** Where targets without a host of their own keep lock, release log and rollback points: a directory on the runner. */
const stateSchema = z.strictObject({
  path: z.string().min(1).describe('a directory on the runner that outlives the job (not the checkout)'),
});

const runnerFields = {
  current: z.string().min(1).describe('prints the live version (one line; empty = nothing deployed)'),
  up: z.string().min(1),
  rollback: z.string().min(1).describe('returns to the version in $HD_PREVIOUS'),
  snapshot: z
    .string()
    .min(1)
    .optional()
    .describe('runs before the target is changed, e.g. a database backup'),
  down: z.string().min(1).optional().describe('removes a first deploy, when there is no previous version'),
  cwd: z.string().min(1).optional(),
  timeout: duration.optional(),
  state: stateSchema.optional(),
};
const runnerDefaults = z.strictObject({
  cwd: z.string().min(1).optional(),
  timeout: duration.optional(),
  state: stateSchema.optional(),
});

const VERCEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const vercelFields = {
  project: z.string().regex(VERCEL_ID, 'expected a Vercel project id (prj_...) or name'),
  team: z.string().regex(VERCEL_ID, 'expected a Vercel team id (team_...) or slug').optional(),
  token_env: envName.optional(),
  api: httpUrlSchema().optional(),
  promote: z.enum(['production', 'preview']).optional(),
  source: z.enum(['git', 'files']).optional(),
  repo: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$|^\d+$/, 'expected "owner/repo" or a numeric repository id')
    .optional(),
  git_provider: z.enum(['github', 'gitlab', 'bitbucket']).optional(),
  domains: z
    .array(z.string().regex(/^[A-Za-z0-9*][A-Za-z0-9.-]*$/, 'expected a domain such as shop.example.com'))
    .optional(),
  build_timeout: duration.optional(),
  poll_interval: duration.optional(),
  state: stateSchema.optional(),
};
const vercelDefaults = z.strictObject({
  team: vercelFields.team,
  token_env: vercelFields.token_env,
  api: vercelFields.api,
  promote: vercelFields.promote,
  source: vercelFields.source,
  repo: vercelFields.repo,
  git_provider: vercelFields.git_provider,
  build_timeout: vercelFields.build_timeout,
  poll_interval: vercelFields.poll_interval,
  state: stateSchema.optional(),
  /** Client-side pacing, from Vercel's documented plan limits unless set. */
  plan: z.enum(['hobby', 'pro', 'enterprise']).optional(),
  concurrent_builds: z.number().int().min(1).max(1000).optional(),
  deployments_per_day: z.number().int().min(1).max(1_000_000).optional(),
});

const targetCommon = {
  stage: stageTag.optional(),
  vars: varsSchema.optional(),
  labels: labelsSchema.optional(),
};
export const targetSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('runner'), ...targetCommon, ...runnerFields }),
  z.strictObject({ kind: z.literal('vercel'), ...targetCommon, ...vercelFields }),
]);
export type TargetInput = z.infer<typeof targetSchema>;

const lockSchema = z.strictObject({
  stale_after: duration.optional(),
  takeover_stale: z.boolean().optional(),
  wait: duration.optional(),
});

export const NOTIFY_EVENTS = [
  'started',
  'succeeded',
  'partial_success',
  'failed',
  'rolled_back',
  'rollback_failed',
  'escalation',
] as const;

const httpUrl = httpUrlSchema();

const notifySchema = z.strictObject({
  events: z.array(z.enum(NOTIFY_EVENTS)).min(1).optional(),
  timeout: duration.optional(),
  retries: z.number().int().min(0).max(5).optional(),
  telegram: z
    .strictObject({
      token_env: envName,
      chat_id: z.union([z.string().min(1), z.number()]),
      api_url: httpUrl.optional(),
    })
    .optional(),
  slack: z.strictObject({ webhook_env: envName }).optional(),
  discord: z.strictObject({ webhook_env: envName }).optional(),
  webhook: z.strictObject({ url_env: envName, secret_env: envName.optional() }).optional(),
});

const metricsSchema = z.strictObject({
  pushgateway: z
    .strictObject({
      url: httpUrl.refine(
        (u) => !/^https?:\/\/[^/?#]*@/.test(u),
        'credentials do not belong in the URL (it is committed and appears in errors): set username_env and password_env',
      ),
      job: z
        .string()
        .regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/)
        .optional(),
      username_env: envName.optional(),
      password_env: envName.optional(),
    })
    .optional(),
  textfile: z
    .string()
    .regex(/^\/.+\.prom$/, 'expected an absolute path ending in .prom (node_exporter textfile collector)')
    .optional(),
  environment: z.string().min(1).optional(),
});

export const configSchema = z.strictObject({
  version: z.literal(1),
  project: name('project'),
  source: z.string().min(1).optional(),
  defaults: z
    .strictObject({
      ...hostDefaultsShape,
      parallel: z.number().int().min(1).max(1000).optional(),
      runner: runnerDefaults.optional(),
      vercel: vercelDefaults.optional(),
      labels: labelsSchema.optional(),
    })
    .optional(),
  hosts: z.record(name('host'), hostSchema).optional(),
  /** Targets of other kinds than SSH hosts, in the same namespace. */
  targets: z.record(name('target'), targetSchema).optional(),
  inventory: z
    .array(
      z.strictObject({
        file: z.string().min(1).describe('YAML, JSON or CSV next to the config; one row per target'),
        kind: z.enum(['ssh', 'runner', 'vercel']).optional(),
        defaults: z.record(z.string(), z.unknown()).optional().describe('fields every row gets'),
        template: z
          .record(z.string(), z.unknown())
          .optional()
          .describe('fields rendered per row from {{row.<column>}}'),
      }),
    )
    .optional(),
  state: stateSchema.optional(),
  release: releaseSchema.optional(),
  checkpoint: z
    .strictObject({
      above: z.number().int().min(0).describe('a run touching more targets needs a confirmation'),
    })
    .optional(),
  window: z
    .strictObject({
      days: z
        .array(
          z
            .string()
            .regex(
              /^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?$/,
              'expected a day such as "mon" or a range such as "mon-fri"',
            ),
        )
        .min(1)
        .optional(),
      from: z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'expected a time such as "02:00"'),
      to: z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$/, 'expected a time such as "04:00"'),
      tz: z.string().min(1).optional().describe('an IANA time zone such as UTC or Europe/Berlin'),
      wait: z.boolean().optional().describe('outside the window, wait for it instead of refusing'),
    })
    .optional(),
  secrets: z
    .strictObject({
      file: z
        .string()
        .regex(/^[A-Za-z0-9._-]+$/, 'expected a file name such as .env (no directories)')
        .optional(),
      keys: z.array(envName).min(1),
      // dotenv dialect of the file; auto picks python-dotenv for podman-compose hosts
      format: z.enum(['auto', 'compose', 'python-dotenv']).optional(),
    })
    .optional(),
  health: z.array(healthCheckSchema).optional(),
  /** The default pipeline's tests, run on staging (they gate production); with `stages`, put tests on a stage. */
  tests: testsSchema.optional(),
  stages: z.array(stageSchema).min(1).optional(),
  verify: z
    .strictObject({
      health: z.array(healthCheckSchema).optional(),
      on_failure: z.enum(['rollback-all', 'none']).optional(),
    })
    .optional(),
  lock: lockSchema.optional(),
  notify: notifySchema.optional(),
  metrics: metricsSchema.optional(),
});
export type ConfigInput = z.infer<typeof configSchema>;
