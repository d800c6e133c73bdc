import type { Config, HostConfig } from '../config/types';
import { DeployError, toDeployError } from '../errors';
import type { Redactor } from '../secrets/redact';
import { SshConnection, type Endpoint } from './connection';
import { loadCredentials } from './credentials';
import { FALLBACK_KNOWN_HOSTS_ENV } from './fallback';
import { HostKeyPolicy } from './known-hosts';

export interface PoolOptions {
  env: NodeJS.ProcessEnv;
  redactor: Redactor;
  runToken: string;
  fallbackKey?: string; // the action's ssh-key input
  fallbackKnownHosts?: string; // a known_hosts file written from the action's known-hosts input
}

export function endpointOf(host: HostConfig): Endpoint {
  return {
    name: host.name,
    address: host.address,
    port: host.ssh.port,
    user: host.ssh.user,
    connectTimeoutMs: host.ssh.connectTimeoutMs,
    keepaliveIntervalMs: host.ssh.keepaliveIntervalMs,
    keepaliveCount: host.ssh.keepaliveCount,
    maxChannels: host.ssh.maxChannels,
    commandTimeoutMs: host.ssh.commandTimeoutMs,
  };
}

/**
 * The host keys a host is checked against. The config's own `known_hosts` file wins; without one, the action's
 * known-hosts input (written to a file), then DEPLOY_KNOWN_HOSTS (known_hosts text). Pinned fingerprints are
 * trusted alongside whichever applies. With none of them the host is refused before any connection: host keys
 * are always verified and nothing is trusted on first use.
 */
export function hostKeyPolicyFor(
  host: HostConfig,
  opts: { env: NodeJS.ProcessEnv; fallbackKnownHosts?: string },
): HostKeyPolicy {
  const pinned = host.ssh.fingerprints;
  const file = host.ssh.knownHosts ?? opts.fallbackKnownHosts;
  if (file) {
    try {
      return HostKeyPolicy.fromFile(file, pinned);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new DeployError(
        'host-key',
        `known_hosts file for ${host.name} ${code === 'ENOENT' ? 'not found' : `cannot be read (${code})`}: ${file}`,
        { host: host.name },
      );
    }
  }
  const text = opts.env[FALLBACK_KNOWN_HOSTS_ENV];
  if (text?.trim()) return HostKeyPolicy.fromText(text, pinned, FALLBACK_KNOWN_HOSTS_ENV);
  if (pinned.length > 0) return HostKeyPolicy.fromFile(undefined, pinned);
  throw new DeployError(
    'host-key',
    `no host key to verify ${host.name} against: the config sets no ssh.known_hosts or ssh.fingerprints for it, and neither the action's known-hosts input nor ${FALLBACK_KNOWN_HOSTS_ENV} is set (host keys are always verified; nothing is trusted on first use)`,
    { host: host.name },
  );
}

/** One connection per host for the whole run, opened on first use; a jump host's connection is shared too. */
export class ConnectionPool {
  private readonly conns = new Map<string, Promise<SshConnection>>();

  constructor(
    private readonly config: Config,
    private readonly opts: PoolOptions,
  ) {}

  get(hostName: string): Promise<SshConnection> {
    let p = this.conns.get(hostName);
    if (p) {
      // A connection that died is reopened once per request: the next phase may find the host back.
      return p.then((c) => (c.isOpen ? c : this.reopen(hostName)));
    }
    p = this.open(hostName);
    this.conns.set(hostName, p);
    p.catch(() => this.conns.delete(hostName));
    return p;
  }

  private reopen(hostName: string): Promise<SshConnection> {
    this.conns.delete(hostName);
    return this.get(hostName);
  }

  private async open(hostName: string): Promise<SshConnection> {
    const host = this.config.hosts[hostName];
    if (!host) throw new DeployError('config', `unknown host "${hostName}"`);
    try {
      const policy = hostKeyPolicyFor(host, this.opts);
      const credentials = loadCredentials(
        hostName,
        host.ssh,
        this.opts.env,
        this.opts.redactor,
        this.opts.fallbackKey,
      );
      const via = host.ssh.jump
        ? await this.get(host.ssh.jump).catch((err: unknown) => {
            const e = toDeployError(err, 'unreachable');
            throw new DeployError(e.errorClass, `via jump host ${host.ssh.jump}: ${e.message}`, {
              host: hostName,
            });
          })
        : undefined;
      return await SshConnection.connect(endpointOf(host), credentials, policy, {
        via,
        runToken: this.opts.runToken,
      });
    } catch (err) {
      throw toDeployError(err, 'unreachable').withContext({ host: hostName });
    }
  }

  /** Connections that are open now (for cancellation: kill what we started on each). */
  async open_(): Promise<SshConnection[]> {
    const settled = await Promise.allSettled(this.conns.values());
    return settled.flatMap((s) => (s.status === 'fulfilled' && s.value.isOpen ? [s.value] : []));
  }

  async killAll(): Promise<void> {
    const conns = await this.open_();
    await Promise.all(conns.map((c) => c.kill()));
  }

  async closeAll(): Promise<void> {
    const conns = await this.open_();
    // Close hosts reached through a jump host before the jump host itself.
    for (const c of conns.filter((c) => this.config.hosts[c.endpoint.name]?.ssh.jump)) c.close();
    for (const c of conns) c.close();
  }
}
