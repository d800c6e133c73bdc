import type { Config } from '../config/types';
import { releaseLock } from '../deploy/host-ops';
import type { Redactor } from '../secrets/redact';
import { makeContext } from '../run/context';

/**
 * Releases the locks a run holds, for the action's post step: a run that was killed before its own cleanup must
 * not leave hosts locked. Its remote commands are killed first (they would go on changing the host), then only
 * locks carrying this run's token are removed, and not while a rollback it handed over still runs there.
 */
export async function releaseRunLocks(
  config: Config,
  runToken: string,
  hosts: string[],
  opts: { env: NodeJS.ProcessEnv; redactor: Redactor; fallbackKey?: string; fallbackKnownHosts?: string },
): Promise<{ host: string; released: boolean; error?: string }[]> {
  const ctx = makeContext(config, { ...opts, runToken });
  const results = await Promise.all(
    hosts.map(async (host) => {
      try {
        await (await ctx.pool.get(host)).kill();
        return { host, released: await releaseLock(ctx, config.hosts[host]) };
      } catch (err) {
        return { host, released: false, error: opts.redactor.redact((err as Error).message) };
      }
    }),
  );
  await ctx.pool.closeAll();
  return results;
}
