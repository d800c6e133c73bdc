import type { Config, HostConfig } from '../config/types';
import { DeployError, toDeployError } from '../errors';
import type { Redactor } from '../secrets/redact';
import { isHandshakeTimeout, SshConnection, type Endpoint } from './connection';
import { loadCredentials } from './credentials';
import { FALLBACK_KNOWN_HOSTS_ENV } from './fallback';
import { HostKeyPolicy, KnownHostsCache } from './known-hosts';

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
  /** `cache`: files (and text) read once and reused for every host that names them (ConnectionPool keeps one). */
  opts: { env: NodeJS.ProcessEnv; fallbackKnownHosts?: string; cache?: KnownHostsCache },
): HostKeyPolicy {
  const pinned = host.ssh.fingerprints;
  const file = host.ssh.knownHosts ?? opts.fallbackKnownHosts;
  if (file) {
    try {
      return HostKeyPolicy.fromFile(file, pinned, opts.cache);
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
  if (text?.trim()) return HostKeyPolicy.fromText(text, pinned, FALLBACK_KNOWN_HOSTS_ENV, opts.cache);
  if (pinned.length > 0) return HostKeyPolicy.fromFile(undefined, pinned);
  throw new DeployError(
    'host-key',
    `no host key to verify ${host.name} against: the config sets no ssh.known_hosts or ssh.fingerprints for it, and neither the action's known-hosts input nor ${FALLBACK_KNOWN_HOSTS_ENV} is set (host keys are always verified; nothing is trusted on first use)`,
    { host: host.name },
  );
}

interface PoolEntry {
  conn: Promise<SshConnection>;
  /** Someone asked for this host's own work (get) and has not released it since. */
  held: boolean;
  /** Hosts whose connections run through this one (ProxyJump): it stays open while any of them is open. */
  dependents: Set<string>;
  /** The jump host this connection runs through. */
  via?: string;
}

/**
 * Connections by host, opened on first use. A host's connection stays open until its work is released
 * (release) or the run ends (closeAll); a later get opens a fresh one. A jump host's connection is shared by every
 * host reached through it and stays open while any of them is. Connections of one run share the run token and
 * one numbering of command tokens, and known_hosts files are read once per pool.
 */
export class ConnectionPool {
  private readonly entries = new Map<string, PoolEntry>();
  private readonly knownHosts = new KnownHostsCache();
  private readonly sequence = { value: 0 };

  constructor(
    private readonly config: Config,
    private readonly opts: PoolOptions,
  ) {}

  get(hostName: string): Promise<SshConnection> {
    return this.acquire(hostName);
  }

  /**
   * This host's part of the run is over: its connection is closed once nothing of ours runs on it any more
   * (commands and SFTP transfers in progress finish first) and no host reached through it is still open. A
   * later get opens a new connection. Resolves when that is done or when the connection stays (still in use).
   */
  async release(hostName: string): Promise<void> {
    const e = this.entries.get(hostName);
    if (!e) return;
    e.held = false;
    await this.closeIfUnused(hostName, e);
  }

  /** Hosts with a connection (open or opening) right now; for tests and diagnostics. */
  get connectedHosts(): string[] {
    return [...this.entries.keys()];
  }

  private acquire(hostName: string, dependent?: string): Promise<SshConnection> {
    const e = this.entries.get(hostName);
    if (e) {
      if (dependent) e.dependents.add(dependent);
      else e.held = true;
      const entry = e;
      // A connection that died is reopened once per request: the next phase may find the host back.
      return entry.conn.then((c) => (c.isOpen ? c : this.reopen(hostName, entry, dependent)));
    }
    const entry: PoolEntry = {
      conn: this.open(hostName),
      held: !dependent,
      dependents: new Set(dependent ? [dependent] : []),
      via: this.config.hosts[hostName]?.ssh.jump,
    };
    this.entries.set(hostName, entry);
    entry.conn.catch(() => this.forget(hostName, entry));
    return entry.conn;
  }

  private reopen(hostName: string, entry: PoolEntry, dependent?: string): Promise<SshConnection> {
    if (this.entries.get(hostName) === entry) {
      this.entries.delete(hostName);
      // What held the dead connection holds the new one.
      const held = entry.held;
      const p = this.acquire(hostName, dependent);
      const fresh = this.entries.get(hostName);
      if (fresh) {
        fresh.held = fresh.held || held;
        for (const d of entry.dependents) fresh.dependents.add(d);
      }
      return p;
    }
    return this.acquire(hostName, dependent);
  }

  /** Drops an entry whose connection failed to open, and gives back its hold on the jump host. */
  private forget(hostName: string, entry: PoolEntry): void {
    if (this.entries.get(hostName) !== entry) return;
    this.entries.delete(hostName);
    this.dropDependent(entry.via, hostName);
  }

  private dropDependent(jump: string | undefined, hostName: string): void {
    if (!jump) return;
    const j = this.entries.get(jump);
    if (!j) return;
    j.dependents.delete(hostName);
    void this.closeIfUnused(jump, j);
  }

  private async closeIfUnused(hostName: string, e: PoolEntry): Promise<void> {
    if (e.held || e.dependents.size > 0) return;
    let conn: SshConnection;
    try {
      conn = await e.conn;
    } catch {
      return; // never opened: forget() has dealt with it
    }
    await conn.idle();
    // Someone may have asked for the host again while its work finished.
    if (this.entries.get(hostName) !== e || e.held || e.dependents.size > 0) return;
    this.entries.delete(hostName);
    // Waited for, so a host that gives its connection back has really let go of it before the next one opens.
    await conn.closeAndWait();
    this.dropDependent(e.via, hostName);
  }

  private async open(hostName: string): Promise<SshConnection> {
    const host = this.config.hosts[hostName];
    if (!host) throw new DeployError('config', `unknown host "${hostName}"`);
    try {
      const policy = hostKeyPolicyFor(host, { ...this.opts, cache: this.knownHosts });
      const credentials = loadCredentials(
        hostName,
        host.ssh,
        this.opts.env,
        this.opts.redactor,
        this.opts.fallbackKey,
      );
      const via = host.ssh.jump
        ? await this.acquire(host.ssh.jump, hostName).catch((err: unknown) => {
            const e = toDeployError(err, 'unreachable');
            throw new DeployError(e.errorClass, `via jump host ${host.ssh.jump}: ${e.message}`, {
              host: hostName,
            });
          })
        : undefined;
      const connect = () =>
        SshConnection.connect(endpointOf(host), credentials, policy, {
          via,
          runToken: this.opts.runToken,
          sequence: this.sequence,
        });
      try {
        return await connect();
      } catch (err) {
        if (!isHandshakeTimeout(err)) throw err;
        return await connect().catch((again: unknown) => {
          if (!isHandshakeTimeout(again)) throw again;
          const e = again as DeployError;
          throw new DeployError(e.errorClass, `${e.message} (2 attempts)`, { host: hostName });
        });
      }
    } catch (err) {
      throw toDeployError(err, 'unreachable').withContext({ host: hostName });
    }
  }

  /** Connections that are open now (for cancellation: kill what we started on each). */
  async open_(): Promise<SshConnection[]> {
    const settled = await Promise.allSettled([...this.entries.values()].map((e) => e.conn));
    return settled.flatMap((s) => (s.status === 'fulfilled' && s.value.isOpen ? [s.value] : []));
  }

  async killAll(): Promise<void> {
    const conns = await this.open_();
    await Promise.all(conns.map((c) => c.kill()));
  }

  async closeAll(): Promise<void> {
    const conns = await this.open_();
    this.entries.clear();
    // Close hosts reached through a jump host before the jump host itself.
    for (const c of conns.filter((c) => this.config.hosts[c.endpoint.name]?.ssh.jump)) c.close();
    for (const c of conns) c.close();
  }
}
