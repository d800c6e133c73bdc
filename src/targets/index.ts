import { DeployError } from '../errors';
import { ConnectionPool } from '../remote/pool';
import type { RunContext } from '../run/context';
import { SshTarget } from './ssh/target';
import type { Target } from './target';

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
      default:
        throw new DeployError(
          'config',
          `targets.${name}: kind "${config.kind}" cannot be deployed by this build`,
        );
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
