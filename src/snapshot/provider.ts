import * as fs from 'node:fs';
import type { HostConfig, SnapshotSettings } from '../config/types';
import { DeployError } from '../errors';
import type { RunContext } from '../run/context';
import type { Shell } from '../util/shell';
import { act, type SnapshotAction, type SnapshotProvider } from './action';
import { commandProvider } from './command';
import { ProxmoxClient, SNAPSHOT_DESCRIPTION_MARK, type TaskOutcome } from './proxmox';

export const SNAPSHOT_PREFIX = 'hd-';
export { SnapshotActionError, type SnapshotAction, type SnapshotProvider } from './action';

/** Proxmox allows letters, digits, '-' and '_', starting with a letter, up to 40 characters. */
export function snapshotName(releaseId: string, runToken: string): string {
  return `${SNAPSHOT_PREFIX}${releaseId}-${runToken}`.slice(0, 40);
}

const fromTasks = (outcomes: TaskOutcome[]) => ({
  tasks: outcomes.map((o) => o.upid),
  warnings: outcomes.flatMap((o) => o.warnings ?? []),
});

/** `shell` runs the command provider's commands on the host. */
export function snapshotProvider(
  ctx: RunContext,
  host: HostConfig,
  s: SnapshotSettings,
  shell: Shell,
): SnapshotProvider {
  if (s.provider === 'command') return commandProvider(ctx, host, s, shell);
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
    signal: ctx.signal,
  });
  const target = `proxmox ${client.vm}`;
  const base = (action: SnapshotAction['action'], name: string) =>
    ({ action, host: host.name, provider: 'proxmox', target, name }) as const;
  return {
    describe: target,
    create: (name) =>
      act(base('snapshot-created', name), async () =>
        fromTasks([
          await client.createSnapshot(
            name,
            `${SNAPSHOT_DESCRIPTION_MARK} ${ctx.release.id} ${ctx.run.url ?? ''}`.trim(),
          ),
        ]),
      ),
    rollback: (name) =>
      act(base('snapshot-rolled-back', name), async () => {
        const outcomes = await client.rollback(name);
        return { ...fromTasks(outcomes), detail: outcomes.length > 1 ? 'and started the guest' : undefined };
      }),
    prune: async (protect) => {
      const done: SnapshotAction[] = [];
      for (const snap of await client.pruneCandidates(SNAPSHOT_PREFIX, s.keep, protect))
        done.push(
          await act(
            base('snapshot-deleted', snap.name),
            async () => fromTasks([await client.deleteSnapshot(snap.name)]),
            done,
          ),
        );
      return done;
    },
  };
}
