import type { Config } from '../config/types';
import { makeContext } from '../run/context';
import type { Redactor } from '../secrets/redact';
import { createTargets } from '../targets';

/**
 * Releases the locks a run holds, for the action's post step: a run that was killed before its own cleanup must
 * not leave targets locked. Its remote commands are killed first (they would go on changing the target) and the
 * lock is released only once none of them is left (a target where that cannot be made sure keeps its lock and is
 * reported with the error); only locks carrying this run's token are removed, and not while a rollback it handed
 * over still runs there.
 */
export async function releaseRunLocks(
  config: Config,
  runToken: string,
  hosts: string[],
  opts: { env: NodeJS.ProcessEnv; redactor: Redactor; fallbackKey?: string; fallbackKnownHosts?: string },
): Promise<{ host: string; released: boolean; error?: string }[]> {
  const ctx = makeContext(config, { runToken, env: opts.env, redactor: opts.redactor });
  const targets = createTargets(ctx, opts);
  const results = await Promise.all(
    hosts.map(async (host) => {
      try {
        const t = targets.get(host);
        await t.kill();
        return { host, released: await t.releaseLock() };
      } catch (err) {
        return { host, released: false, error: opts.redactor.redact((err as Error).message) };
      }
    }),
  );
  await targets.closeAll();
  return results;
}
