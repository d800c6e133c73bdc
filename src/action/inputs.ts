import * as core from '@actions/core';
import { z } from 'zod';
import { parseEnvFile } from '../secrets/env-file';
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
  secretsEnv: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()),
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
    secretsEnv: parseSecretsEnv(readInput('secrets-env')),
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
