import * as fs from 'node:fs';
import { run, runOk } from './exec';

/**
 * Installs a Debian package with apt when the program the benchmark needs from it is missing (apt-get update
 * only if the first try fails). The benchmark needs nothing else than root and these packages.
 */
export async function ensureDebianPackage(
  program: string,
  pkg: string,
  why: string,
  log: (line: string) => void,
): Promise<void> {
  if (fs.existsSync(program)) return;
  log(`installing ${pkg} (${why})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = ['install', '-y', '-o', 'DPkg::Lock::Timeout=300', pkg];
  if ((await run('apt-get', install, { env, timeoutMs: 900_000 })).code !== 0) {
    await runOk('apt-get', ['update'], { env, timeoutMs: 900_000 });
    await runOk('apt-get', install, { env, timeoutMs: 900_000 });
  }
  if (!fs.existsSync(program)) throw new Error(`${pkg} is installed but ${program} is missing`);
}
