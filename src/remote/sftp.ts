import * as path from 'node:path/posix';
import type { SFTPWrapper } from 'ssh2';
import { DeployError } from '../errors';
import type { SshConnection } from './connection';
import { mapLimit } from './semaphore';

export interface UploadFile {
  path: string; // relative, POSIX separators
  data: Buffer;
  mode: number;
}

const call = <T>(
  host: string,
  what: string,
  fn: (cb: (err: Error | null | undefined, v?: T) => void) => void,
): Promise<T> =>
  new Promise((resolve, reject) =>
    fn((err, v) =>
      err
        ? reject(new DeployError('command-failed', `SFTP ${what} on ${host}: ${err.message}`, { host }))
        : resolve(v as T),
    ),
  );

async function mkdirs(sftp: SFTPWrapper, host: string, dirs: string[]): Promise<void> {
  for (const d of dirs) {
    await call<void>(host, `mkdir ${d}`, (cb) =>
      sftp.mkdir(d, { mode: 0o755 }, (err) =>
        cb(err && (err as { code?: number }).code !== 4 ? err : undefined),
      ),
    ).catch(async (err: DeployError) => {
      // SFTP reports an existing directory only as a generic failure; accept it if a directory is there.
      const st = await call<{ isDirectory(): boolean }>(host, `stat ${d}`, (cb) => sftp.stat(d, cb)).catch(
        () => undefined,
      );
      if (!st?.isDirectory()) throw err;
    });
  }
}

export async function writeFile(
  sftp: SFTPWrapper,
  host: string,
  file: string,
  data: Buffer,
  mode: number,
  opts: { exclusive?: boolean; fsync?: boolean } = {},
): Promise<void> {
  const handle = await call<Buffer>(host, `open ${file}`, (cb) =>
    sftp.open(file, opts.exclusive ? 'wx' : 'w', { mode }, cb),
  );
  try {
    let offset = 0;
    while (offset < data.length) {
      const n = Math.min(32 * 1024, data.length - offset);
      await call<void>(host, `write ${file}`, (cb) =>
        sftp.write(handle, data, offset, n, offset, (err) => cb(err)),
      );
      offset += n;
    }
    // The server's umask may have narrowed or widened the mode given at open; set it explicitly.
    await call<void>(host, `chmod ${file}`, (cb) => sftp.fchmod(handle, mode, (err) => cb(err)));
    if (opts.fsync) {
      await call<void>(host, `fsync ${file}`, (cb) => {
        try {
          sftp.ext_openssh_fsync(handle, (err) => cb(err));
        } catch {
          cb(undefined); // server lacks fsync@openssh.com; the activation script runs `sync` on the file instead
        }
      });
    }
  } finally {
    await call<void>(host, `close ${file}`, (cb) => sftp.close(handle, (err) => cb(err))).catch(
      () => undefined,
    );
  }
}

/** Uploads a tree of files under `base` (created if missing). */
export async function uploadTree(conn: SshConnection, base: string, files: UploadFile[]): Promise<number> {
  const host = conn.endpoint.name;
  const sftp = await conn.sftp();
  const dirs = new Set<string>([base]);
  for (const f of files) {
    let d = path.dirname(path.join(base, f.path));
    while (d.length > base.length) {
      dirs.add(d);
      d = path.dirname(d);
    }
  }
  await mkdirs(
    sftp,
    host,
    [...dirs].sort((a, b) => a.length - b.length),
  );
  let bytes = 0;
  await mapLimit(files, 16, async (f) => {
    await writeFile(sftp, host, path.join(base, f.path), f.data, f.mode);
    bytes += f.data.length;
  });
  return bytes;
}
