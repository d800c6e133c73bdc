import { createHash } from 'node:crypto';

/**
 * The job both tools do on every host, defined once: a 2 KB env file that differs per release (so a tool
 * that skips the upload fails verification), a free-disk threshold far below what any machine has, and
 * release names that are safe as file names and shell words.
 */
export const ENV_FILE_BYTES = 2048;
export const MIN_FREE_KIB = 10240;
export const RELEASE_RE = /^[A-Za-z0-9._-]+$/;

/** KEY=value pairs of a release's env file, in file order. Values are plain words: no quoting is needed by either tool. */
export function envValues(release: string): [string, string][] {
  const pairs: [string, string][] = [
    ['APP_ENV', 'production'],
    ['APP_RELEASE', release],
    ['APP_URL', 'https://app.example.com'],
    ['DB_HOST', 'db.example.com'],
    ['DB_PORT', '5432'],
    ['DB_USER', 'app_user'],
  ];
  for (let i = 1; i <= 20; i++) {
    const key = `SECRET_${String(i).padStart(2, '0')}`;
    pairs.push([key, createHash('sha256').update(`${release}/${key}`).digest('hex').slice(0, 56)]);
  }
  const used = pairs.reduce((sum, [k, v]) => sum + k.length + v.length + 2, 0);
  const pad = ENV_FILE_BYTES - used - 'PAD=\n'.length;
  if (pad < 1) throw new Error(`the env file of release ${release} is longer than ${ENV_FILE_BYTES} bytes`);
  pairs.push(['PAD', 'x'.repeat(pad)]);
  return pairs;
}

/** The env file as the baseline uploads it: exactly ENV_FILE_BYTES of KEY=value lines. */
export function renderEnvFile(release: string): string {
  return envValues(release)
    .map(([k, v]) => `${k}=${v}\n`)
    .join('');
}
