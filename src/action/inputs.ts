import * as core from '@actions/core';
import { z } from 'zod';
import { parseDuration } from '../util/duration';

/** The only place action inputs are read; names must match action.yml (a test checks both ways). */
function readInput(name: string): string {
  return core.getInput(name);
}

function readBooleanInput(name: string): boolean {
  const v = core.getInput(name).trim().toLowerCase();
  if (v === '' || v === 'false') return false;
  if (v === 'true') return true;
  throw new Error(`Input "${name}" must be "true" or "false", got ${JSON.stringify(core.getInput(name))}.`);
}

const schema = z.object({
  config: z.string().min(1, 'Input "config" is empty: give the path of the config file.'),
  phase: z
    .string()
    .regex(/^[a-z0-9_,\s-]+$/, 'Input "phase" must be "all" or a comma-separated list of phase names.'),
  ref: z.string().min(1, 'Input "ref" is empty.'),
  targets: z.array(
    z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'Input "targets" must list host names separated by commas.'),
  ),
  dryRun: z.boolean(),
  force: z.boolean(),
  sshKey: z.string(),
  knownHosts: z.string(),
  reportFile: z.string(),
  lockWaitMs: z.number().min(0),
  githubToken: z.string(),
  statuses: z.boolean(),
  environment: z
    .string()
    .regex(
      /^[A-Za-z0-9 _.-]*$/,
      'Input "environment" may hold letters, digits, space, "_", "." and "-" only.',
    ),
});
export type ActionInputs = z.infer<typeof schema>;

export function getInputs(): ActionInputs {
  const lockWait = readInput('lock-wait') || '0';
  const lockWaitMs = parseDuration(lockWait);
  if (lockWaitMs === undefined)
    throw new Error(
      `Input "lock-wait" must be a duration such as 0, 30s or 5m, got ${JSON.stringify(lockWait)}.`,
    );
  const raw = {
    config: readInput('config') || '.github/homelab/deploy.yml',
    phase: readInput('phase') || 'all',
    ref: readInput('ref') || process.env.GITHUB_SHA || 'HEAD',
    targets: readInput('targets')
      .split(/[,\s]+/)
      .map((t) => t.trim())
      .filter(Boolean),
    dryRun: readBooleanInput('dry-run'),
    force: readBooleanInput('force'),
    sshKey: readInput('ssh-key'),
    knownHosts: readInput('known-hosts'),
    reportFile: readInput('report-file'),
    lockWaitMs,
    githubToken: readInput('github-token'),
    statuses: readBooleanInput('statuses'),
    environment: readInput('environment'),
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

/** The post step needs only the connection inputs, to release locks a cancelled main left behind. */
export function getCleanupInputs(): { sshKey: string; knownHosts: string } {
  return { sshKey: readInput('ssh-key'), knownHosts: readInput('known-hosts') };
}
