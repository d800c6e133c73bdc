import type { SFTPWrapper } from 'ssh2';
import { DeployError } from '../../errors';
import {
  createEmpty,
  fsyncFolder,
  hardlink,
  isRefused,
  pathKinds,
  readFileIfExists,
  replaceFile,
  serverExtensions,
  writeFile,
  type SftpOptions,
} from '../../remote/sftp';
import { envSwapChanges, type EnvSwapChange, type EnvSwapNames } from './scripts/env';

/** The OpenSSH extensions a swap over SFTP needs; a server without one of them gets the shell swap. */
export const ENV_SWAP_EXTENSIONS = ['posix-rename@openssh.com', 'hardlink@openssh.com', 'fsync@openssh.com'];

/**
 * After the temp file was written (0600, fsynced, read back): keep the old file and this run's undo, rename the
 * temp file over the env file and sync the folder, all with SFTP requests on the session the write used, so the
 * host starts no process for the swap. Resolves true when the temp file is the env file now, durably; false when
 * the server lacks or refuses a request the swap needs. Nothing is then half done that the shell swap
 * (envSwapStep) cannot finish, since it decides again from what it finds beside the file.
 */
export async function swapEnvOverSftp(
  sftp: SFTPWrapper,
  host: string,
  n: EnvSwapNames,
  opts: SftpOptions,
): Promise<boolean> {
  const have = serverExtensions(sftp);
  if (!ENV_SWAP_EXTENSIONS.every((e) => have.has(e))) return false;
  const at = (f: string) => `${n.dir}/${f}`;
  const [file, saved, undo, absent, fromSaved] = await pathKinds(
    sftp,
    host,
    [n.file, n.saved, n.undo, n.absent, n.fromSaved].map(at),
    opts,
  );
  const changes = envSwapChanges(n, {
    file: file === 'file',
    saved: saved === 'file',
    undoRecorded: [undo, absent, fromSaved].some((k) => k !== 'none'),
  });
  for (const change of changes) {
    try {
      await apply(sftp, host, change, at, opts);
    } catch (err) {
      if (isRefused(err)) return false;
      if (err instanceof DeployError && err.errorClass !== 'command-failed') throw err;
      throw new DeployError('command-failed', `${change.why}: ${(err as Error).message}`, {
        host,
        cause: err,
      });
    }
  }
  await fsyncFolder(sftp, host, n.dir, opts);
  return true;
}

async function apply(
  sftp: SFTPWrapper,
  host: string,
  change: EnvSwapChange,
  at: (f: string) => string,
  opts: SftpOptions,
): Promise<void> {
  switch (change.kind) {
    case 'mark':
      return createEmpty(sftp, host, at(change.path), 0o600, opts);
    case 'rename':
      return replaceFile(sftp, host, at(change.from), at(change.to), opts);
    case 'keep':
      try {
        return await hardlink(sftp, host, at(change.from), at(change.to), opts);
      } catch (err) {
        // A file system without hard links (some FUSE and network mounts) gets a whole copy, renamed in.
        if (isRefused(err) || (err instanceof DeployError && err.errorClass !== 'command-failed')) throw err;
        return copyIn(sftp, host, at(change.from), at(change.to), opts);
      }
  }
}

async function copyIn(
  sftp: SFTPWrapper,
  host: string,
  from: string,
  to: string,
  opts: SftpOptions,
): Promise<void> {
  const data = await readFileIfExists(sftp, host, from, opts);
  if (data === undefined)
    throw new DeployError('command-failed', `SFTP read ${from} on ${host} failed`, { host });
  const tmp = `${to}.tmp`;
  await writeFile(sftp, host, tmp, data, 0o600, { fsync: true, verify: true, ...opts });
  await replaceFile(sftp, host, tmp, to, opts);
}
