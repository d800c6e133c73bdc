import type { Config } from '../config/types';
import { makeContext } from '../run/context';
import type { Redactor } from '../secrets/redact';
import { mapLimit } from '../util/concurrency';
import { createTargets } from './index';
import type { LockState, OperatorLockRelease, TargetStatus } from './target';

/** Operator views over any kind of target (`status`, `lock status|release`, `history`): they change nothing but locks. */

export { describeHolder } from './ssh/owner';
export type { LockState };
export type HostStatus = TargetStatus;
export type LockReleaseResult = OperatorLockRelease;

export interface InspectOptions {
  env: NodeJS.ProcessEnv;
  redactor: Redactor;
}

async function onEachTarget<T>(
  config: Config,
  names: string[],
  opts: InspectOptions,
  runToken: string,
  fn: (t: ReturnType<ReturnType<typeof createTargets>['get']>) => Promise<T>,
  onError: (name: string, message: string) => T,
): Promise<T[]> {
  const ctx = makeContext(config, { runToken, env: opts.env, redactor: opts.redactor });
  const targets = createTargets(ctx);
  try {
    return await mapLimit(names, config.parallel, async (name) => {
      try {
        return await fn(targets.get(name));
      } catch (err) {
        return onError(name, opts.redactor.redact((err as Error).message));
      }
    });
  } finally {
    await targets.closeAll();
  }
}

/** Each target's state for operators: one round trip per target, no changes. */
export function hostStatuses(config: Config, names: string[], opts: InspectOptions): Promise<HostStatus[]> {
  return onEachTarget(
    config,
    names,
    opts,
    'inspect',
    (t) => t.status(),
    (host, error) => ({ host, kind: config.targets[host]?.kind ?? 'ssh', reachable: false, error }),
  );
}

/** `lock release`: stale locks only, unless forced; audited where the lock lives. */
export function releaseLocks(
  config: Config,
  names: string[],
  opts: InspectOptions & { operator: string; force: boolean },
): Promise<LockReleaseResult[]> {
  return onEachTarget(
    config,
    names,
    opts,
    'operator',
    (t) => t.releaseLockAsOperator({ operator: opts.operator, force: opts.force }),
    (host, error) => ({ host, outcome: 'error', error }),
  );
}

/** Every target's release log, for `history`; unreachable targets are reported, not fatal. */
export function readReleaseLogs(
  config: Config,
  names: string[],
  opts: InspectOptions,
): Promise<{ host: string; text?: string; error?: string }[]> {
  return onEachTarget(
    config,
    names,
    opts,
    'history',
    async (t): Promise<{ host: string; text?: string; error?: string }> => ({
      host: t.name,
      text: await t.readReleaseLog(),
    }),
    (host, error) => ({ host, error }),
  );
}
