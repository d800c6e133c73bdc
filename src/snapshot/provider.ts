import * as fs from 'node:fs';
import type { HostConfig, SnapshotSettings } from '../config/types';
import { DeployError } from '../errors';
import type { RunContext } from '../pipeline/context';
import { shExports } from '../remote/quote';
import { ProxmoxClient } from './proxmox';

export const SNAPSHOT_PREFIX = 'hd-';

/** An infrastructure rollback point (VM or filesystem snapshot) taken before a host is changed. */
export interface SnapshotProvider {
  describe: string;
  create(name: string): Promise<void>;
  rollback(name: string): Promise<void>;
  /** Removes this tool's older snapshots beyond `keep`, never `protect`. */
  prune(protect: string[]): Promise<string[]>;
}

/** Proxmox allows letters, digits, '-' and '_', starting with a letter, up to 40 characters. */
export function snapshotName(releaseId: string, runToken: string): string {
  return `${SNAPSHOT_PREFIX}${releaseId}-${runToken}`.slice(0, 40);
}

export function snapshotProvider(ctx: RunContext, host: HostConfig, s: SnapshotSettings): SnapshotProvider {
  if (s.provider === 'proxmox') {
    const token = ctx.env[s.tokenEnv];
    if (!token)
      throw new DeployError(
        'precondition',
        `hosts.${host.name}.snapshot.proxmox.token_env: ${s.tokenEnv} is not set or empty`,
        { host: host.name },
      );
    ctx.redactor.add(token);
    const client = new ProxmoxClient({
      api: s.api,
      node: s.node,
      vmid: s.vmid,
      type: s.type,
      token,
      trust: { ca: s.caFile ? fs.readFileSync(s.caFile, 'utf8') : undefined, fingerprint: s.fingerprint },
      timeoutMs: s.timeoutMs,
      taskTimeoutMs: s.taskTimeoutMs,
    });
    return {
      describe: `proxmox ${s.node}/${s.type}/${s.vmid}`,
      create: (name) =>
        client.createSnapshot(name, `homelab-deploy ${ctx.release.id} ${ctx.run.url ?? ''}`.trim()),
      rollback: (name) => client.rollback(name),
      prune: (protect) => client.prune(SNAPSHOT_PREFIX, s.keep, protect),
    };
  }
  const run = async (what: string, script: string, name: string) => {
    const conn = await ctx.pool.get(host.name);
    const res = await conn.exec(
      `${shExports({ HD_SNAPSHOT: name, HD_HOST: host.name, HD_PATH: host.path, HD_RELEASE: ctx.release.id })}\n${script}`,
      {
        timeoutMs: 10 * 60_000,
        signal: ctx.signal,
      },
    );
    if (res.code !== 0) {
      throw new DeployError(
        'command-failed',
        `snapshot ${what} on ${host.name} exited ${res.code}: ${(res.stderr || res.stdout).trim().slice(-300)}`,
        { host: host.name },
      );
    }
    return res.stdout;
  };
  return {
    describe: 'command',
    create: async (name) => void (await run('create', s.create, name)),
    rollback: async (name) => void (await run('rollback', s.rollback, name)),
    prune: async () => [],
  };
}
