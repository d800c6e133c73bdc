import type { SFTPWrapper } from 'ssh2';
import type { HostConfig } from '../../config/types';
import {
  appendToFile,
  isRefused,
  readFileIfExists,
  replaceFile,
  serverExtensions,
  writeFile,
  type SftpOptions,
} from '../../remote/sftp';
import type { RollbackPoint } from '../target';
import { LAYOUT } from './layout';
import { auditRecord, type ScriptRun } from './scripts/common';

const pointFile = (run: ScriptRun, host: HostConfig) =>
  `${host.path}/${LAYOUT.rollbackPoint(run.release.id)}`;

/** The rollback point an earlier job recorded for this run's release, as the host holds it (`{}` where none). */
export async function readPointOverSftp(
  sftp: SFTPWrapper,
  run: ScriptRun,
  host: HostConfig,
  opts: SftpOptions,
): Promise<string> {
  const text = await readFileIfExists(sftp, host.name, pointFile(run, host), opts);
  return text?.toString('utf8').trim() || '{}';
}

/**
 * Records the rollback point with SFTP requests, as rollbackPointScript does with a shell: the record under a temp
 * name, renamed over (a reader never sees half of it), then its audit line appended. Resolves with the record, or
 * undefined when the server cannot rename over a file (no posix-rename): then the shell records it.
 */
export async function recordPointOverSftp(
  sftp: SFTPWrapper,
  run: ScriptRun,
  host: HostConfig,
  point: RollbackPoint,
  opts: SftpOptions,
): Promise<string | undefined> {
  const file = pointFile(run, host);
  if (!serverExtensions(sftp).has('posix-rename@openssh.com')) return undefined;
  const record = JSON.stringify(point);
  await writeFile(sftp, host.name, `${file}.tmp`, Buffer.from(`${record}\n`), 0o644, opts);
  try {
    await replaceFile(sftp, host.name, `${file}.tmp`, file, opts);
  } catch (err) {
    // A server that announces posix-rename but refuses it (sftp-server -P): the shell writes the temp file again.
    if (isRefused(err)) return undefined;
    throw err;
  }
  const audit = auditRecord(run, host, 'snapshot', {
    kind: 'release',
    previous: point.previous,
    infraSnapshot: point.infraSnapshot,
  });
  await appendToFile(
    sftp,
    host.name,
    `${host.path}/${LAYOUT.auditLog}`,
    Buffer.from(`${audit}\n`),
    0o644,
    opts,
  );
  return record;
}
