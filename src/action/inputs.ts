import * as core from '@actions/core';
import { z } from 'zod';
import { splitSelectors } from '../cli/selectors';
import { versionProblem } from '../release/names';
import { parseEnvFile } from '../secrets/env-file';
import { parseDuration } from '../util/duration';

/** The only place action inputs are read; names must match action.yml (a test checks both ways). */
function readInput(name: string): string {
  return core.getInput(name);
}

function readBooleanInput(name: string, empty = false): boolean {
  const v = core.getInput(name).trim().toLowerCase();
  if (v === '') return empty;
  if (v === 'false') return false;
  if (v === 'true') return true;
  throw new Error(`Input "${name}" must be "true" or "false", got ${JSON.stringify(core.getInput(name))}.`);
}

const STATUS_VALUES = ['success', 'partial_success', 'failed', 'aborted', 'rolled_back'] as const;

/** `true`/`false` were the only values before the Deployments API was offered; they keep their meaning. */
function statusesMode(raw: string): string {
  const v = raw.trim().toLowerCase();
  if (v === '' || v === 'true') return 'auto';
  if (v === 'false') return 'off';
  return raw.trim();
}

function list(raw: string): string[] {
  return raw
    .split(/[\n,]/)
    .map((t) => t.trim())
    .filter(Boolean);
}

const schema = z
  .object({
    config: z.string().min(1, 'Input "config" is empty: give the path of the config file.'),
    phase: z
      .string()
      .regex(/^[a-z0-9_,\s-]+$/, 'Input "phase" must be "all" or a comma-separated list of phase names.'),
    ref: z.string().min(1, 'Input "ref" is empty.'),
    targets: z.array(
      z
        .string()
        .regex(
          /^[A-Za-z0-9_.*?/:-]+(!?=[A-Za-z0-9_.:*?/-]*)?(,[A-Za-z0-9_.*?/-]+(!?=[A-Za-z0-9_.:*?/-]*)?)*$/,
          'Input "targets" must list target names, globs (site-*) or label selectors (region=eu), separated by commas.',
        ),
    ),
    dryRun: z.boolean(),
    force: z.boolean(),
    sshKey: z.string(),
    knownHosts: z.string(),
    secretsEnv: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()),
    reportFile: z.string(),
    /** undefined: the config's lock.wait applies. */
    lockWaitMs: z.number().min(0).optional(),
    githubToken: z.string(),
    statuses: z.enum(['auto', 'commit-status', 'deployments', 'off'], {
      message: 'Input "statuses" must be auto, commit-status, deployments or off (true = auto, false = off).',
    }),
    environment: z
      .string()
      .regex(
        /^[A-Za-z0-9 _.-]*$/,
        'Input "environment" may hold letters, digits, space, "_", "." and "-" only.',
      ),
    environmentUrl: z
      .string()
      .regex(/^(https?:\/\/[^\s]+)?$/, 'Input "environment-url" must be an http(s) URL.'),
    mergeReports: z.array(z.string()),
    mergeMode: z.enum(['shards', 'pipeline'], { message: 'Input "merge-mode" must be shards or pipeline.' }),
    mergeStatus: z.union([z.literal(''), z.enum(STATUS_VALUES)], {
      message: `Input "merge-status" must be one of ${STATUS_VALUES.join(', ')}.`,
    }),
    mergeMatrix: z.string(),
    confirm: z.boolean(),
    ignoreWindow: z.boolean(),
    releaseVersion: z.string(),
    skipTests: z.union([z.boolean(), z.literal('force')]),
    rollbackOnFailure: z.boolean(),
  })
  .superRefine((v, ctx) => {
    if (v.statuses === 'deployments' && !v.environment)
      ctx.addIssue({
        code: 'custom',
        path: ['environment'],
        message:
          'Input "statuses: deployments" needs "environment": the name the deployment is recorded under.',
      });
    if (!v.mergeReports.length) return;
    if (v.mergeMode === 'pipeline' && !v.mergeStatus)
      ctx.addIssue({
        code: 'custom',
        path: ['mergeStatus'],
        message:
          'Input "merge-mode: pipeline" needs "merge-status": the overall status the workflow derived from its jobs.',
      });
    if (v.mergeMode === 'pipeline' && v.mergeMatrix)
      ctx.addIssue({
        code: 'custom',
        path: ['mergeMatrix'],
        message: 'Input "merge-matrix" belongs to "merge-mode: shards".',
      });
    if (v.mergeMode === 'shards' && v.mergeStatus)
      ctx.addIssue({
        code: 'custom',
        path: ['mergeStatus'],
        message:
          'Input "merge-status" belongs to "merge-mode: pipeline"; shard statuses come from the reports.',
      });
  });
export type ActionInputs = z.infer<typeof schema>;

/** KEY=value lines; each value is masked at once, and a malformed line is reported by number, never by content. */
function parseSecretsEnv(text: string): Record<string, string> {
  if (!text.trim()) return {};
  const values = parseEnvFile(text);
  for (const v of Object.values(values)) if (v) core.setSecret(v);
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() && !line.trim().startsWith('#') && !/^[A-Za-z_][A-Za-z0-9_]*=/.test(line)) {
      throw new Error(
        `Input "secrets-env" line ${i + 1} is not KEY=value (key names are letters, digits and _).`,
      );
    }
  });
  return values;
}

/** `false` (or empty), `true`, or `force`: skip the tests only with a record of this commit passing them, or always. */
function readSkipTests(): boolean | 'force' {
  const v = readInput('skip-tests').trim().toLowerCase();
  if (v === '' || v === 'false') return false;
  if (v === 'true') return true;
  if (v === 'force') return 'force';
  throw new Error(
    `Input "skip-tests" must be "false", "true" or "force", got ${JSON.stringify(readInput('skip-tests'))}.`,
  );
}

export function getInputs(): ActionInputs {
  const releaseVersion = readInput('release-version').trim();
  const versionWhy = releaseVersion ? versionProblem(releaseVersion) : undefined;
  if (versionWhy) throw new Error(`Input "release-version": ${versionWhy}.`);
  // Empty means "as the config says": the default must not silently override lock.wait.
  const lockWait = readInput('lock-wait').trim();
  const lockWaitMs = lockWait ? parseDuration(lockWait) : undefined;
  if (lockWait && lockWaitMs === undefined)
    throw new Error(
      `Input "lock-wait" must be a duration such as 0, 30s or 5m (or empty for the config's lock.wait), got ${JSON.stringify(lockWait)}.`,
    );
  const raw = {
    config: readInput('config') || '.github/homelab/deploy.yml',
    phase: readInput('phase') || 'all',
    ref: readInput('ref') || process.env.GITHUB_SHA || 'HEAD',
    // Whitespace or commas separate selectors; a comma between label conditions joins them (both must hold).
    targets: readInput('targets')
      .split(/\n/)
      .flatMap((line) => splitSelectors(line.replace(/\s+/g, ','))),
    dryRun: readBooleanInput('dry-run'),
    force: readBooleanInput('force'),
    sshKey: readInput('ssh-key'),
    knownHosts: readInput('known-hosts'),
    secretsEnv: parseSecretsEnv(readInput('secrets-env')),
    reportFile: readInput('report-file'),
    lockWaitMs,
    githubToken: readInput('github-token'),
    statuses: statusesMode(readInput('statuses')),
    environment: readInput('environment'),
    environmentUrl: readInput('environment-url').trim(),
    mergeReports: list(readInput('merge-reports')),
    mergeMode: readInput('merge-mode').trim() || 'shards',
    mergeStatus: readInput('merge-status').trim(),
    mergeMatrix: readInput('merge-matrix').trim(),
    confirm: readBooleanInput('confirm'),
    ignoreWindow: readBooleanInput('ignore-window'),
    releaseVersion,
    skipTests: readSkipTests(),
    rollbackOnFailure: readBooleanInput('rollback-on-failure', true),
  };
  // Mask before anything can log them, including zod's error messages below.
  if (raw.sshKey)
    for (const line of raw.sshKey.split(/\r?\n/)) if (line.trim().length > 8) core.setSecret(line.trim());
  if (raw.githubToken) core.setSecret(raw.githubToken);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(
      parsed.error.issues
        .map(
          (i) =>
            `${i.message} (got ${JSON.stringify(String(i.path.reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k as string], raw)))})`,
        )
        .join('\n'),
    );
  }
  return parsed.data;
}

/**
 * The post step needs the connection inputs, to release locks a cancelled main left behind, and the token, to
 * close the statuses it left pending. It never fails on an input main already rejected.
 */
export function getCleanupInputs(): { sshKey: string; knownHosts: string; githubToken: string } {
  const githubToken = readInput('github-token');
  if (githubToken) core.setSecret(githubToken);
  return { sshKey: readInput('ssh-key'), knownHosts: readInput('known-hosts'), githubToken };
}
