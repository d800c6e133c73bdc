import type { HostConfig, SnapshotSettings } from '../config/types';
import { DeployError } from '../errors';
import type { RunContext } from '../run/context';
import type { Shell } from '../util/shell';
import { shExports, shQuote } from '../remote/quote';
import { act, type SnapshotAction, type SnapshotProvider } from './action';

/**
 * The command provider's inventory on the host: one JSON line per snapshot it created or deleted.
 *
 * Why a record and not a name prefix as for Proxmox: Proxmox can list a VM's snapshots, so ours are recognised in
 * its listing; a `create` command can make anything (a ZFS snapshot, a tarball, an rsync copy on a NAS) and the
 * config has no `list` command, so the only source of what this tool made is what it ran. The record lives on the
 * host, beside the release log and the rollback points, so every job and runner sees the same one (host state
 * lives on hosts), and appends are serialised by the deploy lock every run holds while it snapshots or prunes.
 */
export const SNAPSHOT_RECORD = '.homelab-deploy/snapshots.log';

export interface SnapshotRecordLine {
  time: string;
  event: 'created' | 'deleted';
  provider: 'command';
  name: string;
  host: string;
  release?: string;
  token?: string;
}

const RECORD_FAILED = '@@hd-snapshot-record-failed@@';

/** Snapshots the record says exist (created, not deleted since), oldest first. Unreadable lines are skipped. */
export function liveSnapshots(text: string): SnapshotRecordLine[] {
  const live = new Map<string, SnapshotRecordLine>();
  for (const line of text.split('\n')) {
    let rec: SnapshotRecordLine;
    try {
      rec = JSON.parse(line) as SnapshotRecordLine;
    } catch {
      continue;
    }
    if (typeof rec?.name !== 'string') continue;
    // Re-insert on create so a name made again (a re-run) counts as new as its latest creation.
    live.delete(rec.name);
    if (rec.event === 'created') live.set(rec.name, rec);
  }
  return [...live.values()];
}

export function commandProvider(
  ctx: RunContext,
  host: HostConfig,
  s: Extract<SnapshotSettings, { provider: 'command' }>,
  shell: Shell,
): SnapshotProvider {
  const record = `${host.path}/${SNAPSHOT_RECORD}`;
  const recordLine = (event: SnapshotRecordLine['event'], name: string) => {
    const line: SnapshotRecordLine = {
      time: new Date().toISOString(),
      event,
      provider: 'command',
      name,
      host: host.name,
      release: ctx.release.id,
      token: ctx.runToken,
    };
    // A snapshot that exists but is not recorded is never pruned: say so rather than fail the action that worked.
    return `{ mkdir -p ${shQuote(`${host.path}/.homelab-deploy`)} && printf '%s\\n' ${shQuote(JSON.stringify(line))} >> ${shQuote(record)}; } || echo ${RECORD_FAILED}`;
  };
  /** Runs a configured command with the snapshot's name in HD_SNAPSHOT; `after` runs only if it succeeded. */
  const run = async (what: string, key: string, script: string, name: string, after?: string) => {
    const res = await shell.exec(
      [
        shExports({ HD_SNAPSHOT: name, HD_HOST: host.name, HD_PATH: host.path, HD_RELEASE: ctx.release.id }),
        // Its own shell: the configured script may `exit` or `cd` without skipping the bookkeeping after it.
        `sh -c ${shQuote(script)} || exit $?`,
        after ?? 'true',
      ].join('\n'),
      { timeoutMs: 10 * 60_000, signal: ctx.signal },
    );
    if (res.code !== 0) {
      throw new DeployError(
        'command-failed',
        `snapshot ${what} of ${name} on ${host.name} (hosts.${host.name}.snapshot.command.${key}) exited ${res.code ?? res.signal}, expected 0: ${(res.stderr || res.stdout).trim().slice(-300)}`,
        { host: host.name },
      );
    }
    return res.stdout.includes(RECORD_FAILED)
      ? [`could not append to ${record}; snapshot ${name} will not be pruned`]
      : [];
  };
  const base = (action: SnapshotAction['action'], name: string) =>
    ({ action, host: host.name, provider: 'command', target: 'command', name }) as const;
  return {
    describe: 'command',
    create: (name) =>
      act(base('snapshot-created', name), async () => ({
        warnings: await run('create', 'create', s.create, name, recordLine('created', name)),
      })),
    rollback: (name) =>
      act(base('snapshot-rolled-back', name), async () => ({
        warnings: await run('rollback', 'rollback', s.rollback, name),
      })),
    prune: async (protect) => {
      // Without a delete command there is nothing to prune with; the record keeps what a later delete will need.
      if (!s.delete) return [];
      const del = s.delete;
      const res = await shell.exec(`cat ${shQuote(record)} 2>/dev/null; true`, {
        timeoutMs: 30_000,
        signal: ctx.signal,
      });
      const live = liveSnapshots(res.stdout);
      const kept = live.filter((x) => protect.includes(x.name)).length;
      const doomed = live
        .filter((x) => !protect.includes(x.name))
        .reverse()
        .slice(Math.max(0, s.keep - kept));
      const done: SnapshotAction[] = [];
      for (const snap of doomed)
        done.push(
          await act(
            base('snapshot-deleted', snap.name),
            async () => ({
              warnings: await run('delete', 'delete', del, snap.name, recordLine('deleted', snap.name)),
            }),
            done,
          ),
        );
      return done;
    },
  };
}
