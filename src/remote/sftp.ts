import * as path from 'node:path/posix';
import type { SFTPWrapper } from 'ssh2';
import { DeployError } from '../errors';
import { discardSftp, type SshConnection } from './connection';
import { mapLimit } from '../util/concurrency';

export interface UploadFile {
  path: string; // relative, POSIX separators
  data: Buffer;
  mode: number;
}

/**
 * Limits for SFTP work. Each request (open, one 32 KiB write, chmod, fsync, close, mkdir, stat) must be answered
 * within `timeoutMs`: a per-request limit measures a stalled server, not a big upload on a slow line. When a
 * request times out or `signal` aborts, the SFTP channel is closed and its connection forgets it (discardSftp),
 * so nothing keeps waiting on it, and the call fails with a `timeout` (or `cancelled`) error naming host and file.
 */
export interface SftpOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const SFTP_REQUEST_TIMEOUT_MS = 30_000;

interface Op {
  sftp: SFTPWrapper;
  host: string;
  opts: SftpOptions;
  stalled?: boolean;
}

function stall(op: Op): void {
  op.stalled = true;
  discardSftp(op.sftp);
}

const call = <T>(
  op: Op,
  what: string,
  fn: (cb: (err: Error | null | undefined, v?: T) => void) => void,
): Promise<T> =>
  new Promise((resolve, reject) => {
    const { host, opts } = op;
    const limit = opts.timeoutMs ?? SFTP_REQUEST_TIMEOUT_MS;
    let done = false;
    const settle = (f: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      f();
    };
    const timer = setTimeout(() => {
      settle(() =>
        reject(
          new DeployError(
            'timeout',
            `SFTP ${what} on ${host} got no answer within ${formatSeconds(limit)}; the SFTP session was closed`,
            { host },
          ),
        ),
      );
      stall(op);
    }, limit);
    const onAbort = () => {
      settle(() => reject(new DeployError('cancelled', `SFTP ${what} on ${host} was cancelled`, { host })));
      stall(op);
    };
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      fn((err, v) =>
        settle(() =>
          err
            ? reject(new DeployError('command-failed', `SFTP ${what} on ${host}: ${err.message}`, { host }))
            : resolve(v as T),
        ),
      );
    } catch (err) {
      // ssh2 throws synchronously when the channel is already closed.
      settle(() =>
        reject(
          new DeployError('unreachable', `SFTP ${what} on ${host}: ${(err as Error).message}`, { host }),
        ),
      );
    }
  });

function formatSeconds(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`;
}

async function mkdirs(op: Op, dirs: string[]): Promise<void> {
  const { sftp } = op;
  for (const d of dirs) {
    await call<void>(op, `mkdir ${d}`, (cb) =>
      sftp.mkdir(d, { mode: 0o755 }, (err) =>
        cb(err && (err as { code?: number }).code !== 4 ? err : undefined),
      ),
    ).catch(async (err: DeployError) => {
      if (err.errorClass !== 'command-failed') throw err; // timeouts and cancellation are final
      // SFTP reports an existing directory only as a generic failure; accept it if a directory is there.
      const st = await call<{ isDirectory(): boolean }>(op, `stat ${d}`, (cb) => sftp.stat(d, cb)).catch(
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
  opts: { exclusive?: boolean; fsync?: boolean } & SftpOptions = {},
): Promise<void> {
  const op: Op = { sftp, host, opts };
  const handle = await call<Buffer>(op, `open ${file}`, (cb) =>
    sftp.open(file, opts.exclusive ? 'wx' : 'w', { mode }, cb),
  );
  try {
    let offset = 0;
    while (offset < data.length) {
      const n = Math.min(32 * 1024, data.length - offset);
      await call<void>(op, `write ${file}`, (cb) =>
        sftp.write(handle, data, offset, n, offset, (err) => cb(err)),
      );
      offset += n;
    }
    // The server's umask may have narrowed or widened the mode given at open; set it explicitly.
    await call<void>(op, `chmod ${file}`, (cb) => sftp.fchmod(handle, mode, (err) => cb(err)));
    if (opts.fsync) {
      await call<void>(op, `fsync ${file}`, (cb) => {
        try {
          sftp.ext_openssh_fsync(handle, (err) => cb(err));
        } catch {
          cb(undefined); // server lacks fsync@openssh.com; the activation script runs `sync` on the file instead
        }
      });
    }
  } finally {
    // After a timeout or cancellation the session is closed already; a close request would only wait again.
    if (!op.stalled)
      await call<void>(op, `close ${file}`, (cb) => sftp.close(handle, (err) => cb(err))).catch(
        () => undefined,
      );
  }
}

/**
 * Reads a whole (small) file, or undefined when it cannot be read (missing, no permission), under the same
 * per-request limit as writes: sftp.readFile alone would wait forever on a stalled server.
 */
export async function readFileIfExists(
  sftp: SFTPWrapper,
  host: string,
  file: string,
  opts: SftpOptions = {},
): Promise<Buffer | undefined> {
  const op: Op = { sftp, host, opts };
  return call<Buffer>(op, `read ${file}`, (cb) => sftp.readFile(file, (err, data) => cb(err, data))).catch(
    (err: DeployError) => {
      if (err.errorClass === 'command-failed') return undefined;
      throw err;
    },
  );
}

/** Uploads a tree of files under `base` (created if missing). */
export async function uploadTree(
  conn: SshConnection,
  base: string,
  files: UploadFile[],
  opts: SftpOptions = {},
): Promise<number> {
  const host = conn.endpoint.name;
  const sftp = await conn.sftp({ signal: opts.signal });
  const o: SftpOptions = { timeoutMs: opts.timeoutMs };
  const dirs = new Set<string>([base]);
  for (const f of files) {
    let d = path.dirname(path.join(base, f.path));
    while (d.length > base.length) {
      dirs.add(d);
      d = path.dirname(d);
    }
  }
  await mkdirs(
    { sftp, host, opts: { ...o, signal: opts.signal } },
    [...dirs].sort((a, b) => a.length - b.length),
  );
  let bytes = 0;
  // One stalled or cancelled file fails the upload at once; the rest must not each wait out their own limit.
  const stop = new AbortController();
  const onOuterAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    await mapLimit(files, 16, async (f) => {
      if (stop.signal.aborted) return;
      try {
        await writeFile(sftp, host, path.join(base, f.path), f.data, f.mode, { ...o, signal: stop.signal });
        bytes += f.data.length;
      } catch (err) {
        if (!stop.signal.aborted) {
          stop.abort();
          throw err;
        }
        if (opts.signal?.aborted) throw err;
      }
    });
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
  if (opts.signal?.aborted)
    throw new DeployError('cancelled', `upload to ${host}:${base} was cancelled`, { host });
  return bytes;
}
