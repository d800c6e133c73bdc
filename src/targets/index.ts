import { DeployError } from '../errors';
import { ConnectionPool } from '../remote/pool';
import type { RunContext } from '../run/context';
import { createRunnerTarget } from './runner/runner-target';
import { SshTarget } from './ssh/target';
import { openStateStore } from './state/open';
import type { StateStore } from './state/store';
import type { Target } from './target';
import { DEFAULT_VERCEL_RUN_SETTINGS, VercelClients } from './vercel/shared';
import { createVercelTarget } from './vercel/target';

export interface TargetSetOptions {
  /** The action's ssh-key input, for hosts that name no key of their own. */
  fallbackKey?: string;
  /** A known_hosts file written from the action's known-hosts input. */
  fallbackKnownHosts?: string;
}

/**
 * The targets of one run, made on first use and shared by every phase: SSH hosts share one connection pool (jump
 * hosts included). Closing the set closes everything the targets hold open.
 */
export class TargetSet {
  private readonly made = new Map<string, Target>();
  private readonly pool: ConnectionPool;
  private readonly stores = new Map<string, StateStore>();
  private vercel?: VercelClients;

  constructor(
    private readonly ctx: RunContext,
    opts: TargetSetOptions = {},
  ) {
    this.pool = new ConnectionPool(ctx.config, {
      env: ctx.env,
      redactor: ctx.redactor,
      runToken: ctx.runToken,
      fallbackKey: opts.fallbackKey,
      fallbackKnownHosts: opts.fallbackKnownHosts,
    });
  }

  get(name: string): Target {
    let t = this.made.get(name);
    if (t) return t;
    const config = this.ctx.config.targets[name];
    if (!config) throw new DeployError('config', `unknown target "${name}"`);
    switch (config.kind) {
      case 'ssh':
        t = new SshTarget(this.ctx, config, { pool: this.pool });
        break;
      case 'runner':
        t = createRunnerTarget(this.ctx, config, openStateStore(config.state, name, this.stores));
        break;
      case 'vercel': {
        // One set of clients per run: targets of one team and token share its build slots, quota and rate limits.
        this.vercel ??= new VercelClients(this.ctx, {
          plan: config.limits.plan,
          concurrentBuilds: config.limits.concurrentBuilds,
          deploymentsPerDay: config.limits.deploymentsPerDay,
          maxRateLimitWaitMs: DEFAULT_VERCEL_RUN_SETTINGS.maxRateLimitWaitMs,
          requestTimeoutMs: DEFAULT_VERCEL_RUN_SETTINGS.requestTimeoutMs,
        });
        t = createVercelTarget(this.ctx, config, {
          ...this.vercel.for(config),
          store: openStateStore(config.state, name, this.stores),
        });
        break;
      }
    }
    this.made.set(name, t);
    return t;
  }

  /** Stops what this run still runs on every target it touched. */
  async killAll(): Promise<void> {
    await this.pool.killAll();
    await Promise.all(
      [...this.made.values()].filter((t) => t.kind !== 'ssh').map((t) => t.kill().catch(() => undefined)),
    );
  }

  async closeAll(): Promise<void> {
    await Promise.all(
      [...this.made.values()].filter((t) => t.kind !== 'ssh').map((t) => t.close().catch(() => undefined)),
    );
    await this.pool.closeAll();
  }
}

export function createTargets(ctx: RunContext, opts: TargetSetOptions = {}): TargetSet {
  return new TargetSet(ctx, opts);
}
