import type { Config } from '../config/types';
import { releaseLock } from '../deploy/host-ops';
import { releaseIdFor } from '../deploy/layout';
import { ConnectionPool } from '../remote/pool';
import type { Redactor } from '../secrets/redact';
import type { RunContext } from './context';

/**
 * Releases the locks a run holds, for the action's post step and for `lock release`: a run that was killed before
 * its own cleanup must not leave hosts locked. Only locks carrying this run's token are removed.
 */
export async function releaseRunLocks(
  config: Config,
  runToken: string,
  hosts: string[],
  opts: { env: NodeJS.ProcessEnv; redactor: Redactor; fallbackKey?: string; fallbackKnownHosts?: string },
): Promise<{ host: string; released: boolean; error?: string }[]> {
  const pool = new ConnectionPool(config, { ...opts, runToken });
  const ctx = {
    config,
    runToken,
    pool,
    redactor: opts.redactor,
    release: { id: releaseIdFor('0'.repeat(40)), commit: '', ref: '' },
    run: {},
    signal: new AbortController().signal,
    env: opts.env,
    files: [],
    emit: () => undefined,
    errorInfo: () => ({ class: 'internal' as const, message: '' }),
  } satisfies RunContext;
  const results = await Promise.all(
    hosts.map(async (host) => {
      try {
        return { host, released: await releaseLock(ctx, config.hosts[host]) };
      } catch (err) {
        return { host, released: false, error: opts.redactor.redact((err as Error).message) };
      }
    }),
  );
  await pool.closeAll();
  return results;
}
