import type { HostConfig } from '../../config/types';
import { shQuote } from '../../remote/quote';
import type { SnapshotAction } from '../../snapshot/action';
import type { Shell } from '../../util/shell';
import { auditLine, type ScriptRun } from './scripts/common';

/** The audit-log line(s) for snapshot actions, as a script fragment; it runs in the host's deploy path. */
export function snapshotAuditScript(run: ScriptRun, host: HostConfig, actions: SnapshotAction[]): string {
  return actions
    .map((a) =>
      auditLine(run, host, a.action, undefined, {
        time: a.time,
        provider: a.provider,
        target: a.target,
        snapshot: a.name,
        ok: a.ok,
        durationMs: a.durationMs,
        tasks: a.tasks,
        warnings: a.warnings,
        error: a.error,
      }),
    )
    .join('\n');
}

/**
 * Appends snapshot actions to the host's .homelab-deploy/audit.log (one round trip). Call it when the host can be
 * written to: after a VM rollback that is once the guest is back, and after it, since the rollback rewound the disk.
 */
export async function auditSnapshotActions(
  run: ScriptRun,
  host: HostConfig,
  shell: Shell,
  actions: SnapshotAction[],
): Promise<void> {
  if (actions.length === 0) return;
  const res = await shell.exec(
    [
      `cd ${shQuote(host.path)} || exit 1`,
      'mkdir -p .homelab-deploy || exit 1',
      snapshotAuditScript(run, host, actions),
    ].join('\n'),
    { timeoutMs: 30_000 },
  );
  if (res.code !== 0)
    throw new Error(
      `appending ${actions.length} snapshot audit line(s) to ${host.path}/.homelab-deploy/audit.log on ${host.name} exited ${res.code}: ${(res.stderr || res.stdout).trim().slice(-200)}`,
    );
}
