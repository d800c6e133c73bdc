import * as path from 'node:path/posix';
import type { SFTPWrapper, Stats } from 'ssh2';
import { DeployError } from '../errors';
import { discardSftp, trackSftpRequest, type SshConnection } from './connection';
import { mapLimit, Semaphore } from '../util/concurrency';

export interface UploadFile {
  path: string; // relative, POSIX separators
  data: Buffer;
  mode: number;
}

/**
 * Limits for SFTP work. Requests are pipelined (sent without waiting for the answers to earlier ones), so the
 * limit is on silence: a request fails when the session has answered nothing for `timeoutMs` while it waited.
 * That measures a stalled server, not a big upload on a slow line. When a request times out or `signal` aborts,
 * the SFTP channel is closed and its connection forgets it (discardSftp), so nothing keeps waiting on it, and the
 * call fails with a `timeout` (or `cancelled`) error naming host and file.
 */
export interface SftpOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const SFTP_REQUEST_TIMEOUT_MS = 30_000;

/** Bytes per write and read request: what OpenSSH's sftp-server and every server since take in one request. */
const CHUNK = 32 * 1024;
/**
 * Requests with data in flight per transfer: 64 of 32 KiB fill OpenSSH's 2 MiB channel window, the most a
 * session can carry anyway; more would only sit in ssh2's buffers.
 */
const WINDOW = 64;
/** Files of a tree open at once (each holds a handle on the server until it is closed). */
const FILES_AT_ONCE = 32;
/** sftp-server's status for a failure it gives no reason for; mkdir answers it for an existing directory. */
const SSH_FX_FAILURE = 4;

/** When each session last answered anything, and the error a stall of it produced (shared by all its requests). */
const sessions = new WeakMap<SFTPWrapper, { lastAnswer: number; stall?: DeployError }>();

function session(sftp: SFTPWrapper): { lastAnswer: number; stall?: DeployError } {
  let s = sessions.get(sftp);
  if (!s) {
    s = { lastAnswer: Date.now() };
    sessions.set(sftp, s);
  }
  return s;
}

interface Pending {
  what: string;
  issuedAt: number;
  fail: (err: DeployError) => void;
}

/**
 * The requests of one transfer on one session. One watchdog per transfer (not a timer per request) and one
 * abort listener: a big file has dozens of requests in flight.
 */
class Requests {
  private readonly pending = new Set<Pending>();
  private timer?: NodeJS.Timeout;
  private readonly limit: number;
  private readonly onAbort = () => this.abort();
  /** The session stalled or this transfer was cancelled: its requests failed and the session was dropped. */
  stalled = false;
  /** No new work should start (set on a stall, or by the caller when one part of the transfer failed). */
  halted = false;
  /** What stalled or cancelled the transfer: the reason to report for every part it stopped. */
  failure?: DeployError;

  constructor(
    readonly sftp: SFTPWrapper,
    readonly host: string,
    private readonly opts: SftpOptions,
  ) {
    this.limit = opts.timeoutMs ?? SFTP_REQUEST_TIMEOUT_MS;
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  dispose(): void {
    this.detachSignal();
    this.clearTimer();
  }

  /** Stops listening to the caller's signal; requests still pending keep their watchdog until answered. */
  detachSignal(): void {
    this.opts.signal?.removeEventListener('abort', this.onAbort);
  }

  /** Sends one request at once and resolves with its answer. */
  call<T>(what: string, fn: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
    const { host, sftp } = this;
    return new Promise<T>((resolve, reject) => {
      const s = session(sftp);
      if (s.stall) return reject(s.stall);
      if (this.opts.signal?.aborted) {
        const err = new DeployError('cancelled', `SFTP ${what} on ${host} was cancelled`, { host });
        this.abort(); // fails what is still pending and drops the session
        this.halted = true;
        this.failure ??= err;
        return reject(err);
      }
      let done = false;
      const untrack = trackSftpRequest(sftp);
      const p: Pending = {
        what,
        issuedAt: Date.now(),
        fail: (err) => settle(() => reject(err)),
      };
      const settle = (f: () => void) => {
        if (done) return;
        done = true;
        this.pending.delete(p);
        if (this.pending.size === 0) this.clearTimer();
        untrack();
        f();
      };
      this.pending.add(p);
      this.arm();
      try {
        fn((err, v) => {
          s.lastAnswer = Date.now();
          settle(() => {
            if (!err) return resolve(v as T);
            // Once the session stalled, ssh2 fails every request still on it; the stall is the real reason.
            reject(
              s.stall ??
                new DeployError('command-failed', `SFTP ${what} on ${host}: ${err.message}`, {
                  host,
                  cause: err,
                }),
            );
          });
        });
      } catch (err) {
        // ssh2 throws synchronously when the channel is already closed.
        settle(() =>
          reject(
            new DeployError('unreachable', `SFTP ${what} on ${host}: ${(err as Error).message}`, { host }),
          ),
        );
      }
    });
  }

  private arm(): void {
    if (this.timer || this.pending.size === 0) return;
    // Unref'd: a request left on a connection that is closing must not keep the process alive on its own.
    this.timer = setTimeout(() => this.check(), this.limit).unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Fails everything pending once the session has been silent for the whole limit while a request waited. */
  private check(): void {
    this.timer = undefined;
    const oldest = this.oldest();
    if (!oldest) return;
    const s = session(this.sftp);
    const quiet = Date.now() - Math.max(s.lastAnswer, oldest.issuedAt);
    if (quiet < this.limit) {
      this.timer = setTimeout(() => this.check(), this.limit - quiet).unref();
      return;
    }
    const err = new DeployError(
      'timeout',
      `SFTP ${oldest.what} on ${this.host} got no answer within ${formatSeconds(this.limit)}; the SFTP session was closed`,
      { host: this.host },
    );
    this.stall(err);
  }

  private abort(): void {
    const oldest = this.oldest();
    if (!oldest) return;
    this.stall(
      new DeployError('cancelled', `SFTP ${oldest.what} on ${this.host} was cancelled`, { host: this.host }),
    );
  }

  private stall(err: DeployError): void {
    const s = session(this.sftp);
    this.stalled = true;
    this.halted = true;
    this.failure ??= err;
    // A cancellation ends this transfer only; a silent server is the session's fault, and every transfer on it fails.
    if (err.errorClass === 'timeout') s.stall ??= err;
    for (const p of [...this.pending]) p.fail(err);
    discardSftp(this.sftp);
  }

  /** Requests are kept in the order they were sent, so the first pending one is the oldest. */
  private oldest(): Pending | undefined {
    return this.pending.values().next().value;
  }
}

function formatSeconds(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`;
}

/** Settles every promise; rejects with the first failure (in the order given) once all are settled. */
async function all(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Creates directories, parents listed before children, in one burst: sftp-server handles requests in order, so
 * a parent exists by the time its child's request is read. A server that reorders them only costs a second,
 * sequential pass over the ones that failed.
 */
async function mkdirs(req: Requests, dirs: string[]): Promise<void> {
  const { sftp } = req;
  const mkdir = (d: string) =>
    req
      .call<void>(`mkdir ${d}`, (cb) =>
        sftp.mkdir(d, { mode: 0o755 }, (err) =>
          cb(err && (err as { code?: number }).code !== SSH_FX_FAILURE ? err : undefined),
        ),
      )
      .then(
        () => undefined,
        (err: DeployError) => err,
      );
  const first = await Promise.all(dirs.map(mkdir));
  for (const [i, err] of first.entries()) {
    if (!err) continue;
    if (err.errorClass !== 'command-failed') throw err; // timeouts and cancellation are final
    const d = dirs[i];
    const again = await mkdir(d);
    if (!again) continue;
    if (again.errorClass !== 'command-failed') throw again;
    // SFTP reports an existing directory only as a generic failure; accept it if a directory is there.
    const st = await req.call<Stats>(`stat ${d}`, (cb) => sftp.stat(d, cb)).catch(() => undefined);
    if (!st?.isDirectory()) throw again;
  }
}

/** How one file is written: `exclusive` fails where it exists; `verify` reads it back before the close. */
export interface WriteOptions {
  exclusive?: boolean;
  fsync?: boolean;
  /**
   * Read the written bytes back through the same handle, after the fsync and before the close, and fail unless
   * they are exactly the data: what a size and checksum check on the host proves, with no process started there.
   */
  verify?: boolean;
}

/** The file's bytes read back from offset 0 to its end, every read sent at once (the file is small). */
async function readBack(req: Requests, handle: Buffer, file: string, size: number): Promise<Buffer> {
  const { sftp } = req;
  const offsets: number[] = [];
  // One read past the end: a file longer than the data shows up as more bytes, not as a match.
  for (let at = 0; at <= size; at += CHUNK) offsets.push(at);
  const parts = await Promise.all(
    offsets.map((at) =>
      req.call<Buffer>(`read back ${file}`, (cb) =>
        sftp.read(handle, Buffer.alloc(CHUNK), 0, CHUNK, at, (err, n, buf) =>
          cb(err, err ? undefined : buf.subarray(0, n)),
        ),
      ),
    ),
  );
  return Buffer.concat(parts);
}

/**
 * Writes one file: open, then every write, the chmod, the fsync, the read-back and the close sent together (one
 * round trip after the open), at most `window` writes in flight.
 */
async function writeWith(
  req: Requests,
  file: string,
  data: Buffer,
  mode: number,
  opts: WriteOptions,
  window: Semaphore,
): Promise<void> {
  const { sftp } = req;
  const flags = opts.verify ? (opts.exclusive ? 'xw+' : 'w+') : opts.exclusive ? 'wx' : 'w';
  const handle = await req.call<Buffer>(`open ${file}`, (cb) => sftp.open(file, flags, { mode }, cb));
  const sent: Promise<unknown>[] = [];
  let failed = false;
  for (let offset = 0; offset < data.length && !failed && !req.halted; offset += CHUNK) {
    const n = Math.min(CHUNK, data.length - offset);
    const release = await window.acquire();
    if (failed || req.halted) {
      release();
      break;
    }
    const at = offset;
    const w = req.call<void>(`write ${file}`, (cb) => sftp.write(handle, data, at, n, at, (err) => cb(err)));
    w.then(release, () => {
      failed = true;
      release();
    });
    sent.push(w);
  }
  if (!failed && !req.halted) {
    // The server's umask may have narrowed or widened the mode given at open; set it explicitly.
    sent.push(req.call<void>(`chmod ${file}`, (cb) => sftp.fchmod(handle, mode, (err) => cb(err))));
    if (opts.fsync) {
      sent.push(
        req.call<void>(`fsync ${file}`, (cb) => {
          try {
            sftp.ext_openssh_fsync(handle, (err) => cb(err));
          } catch {
            cb(undefined); // server lacks fsync@openssh.com; the activation script runs `sync` on the file instead
          }
        }),
      );
    }
    if (opts.verify)
      sent.push(
        readBack(req, handle, file, data.length).then((got) => {
          if (got.equals(data)) return;
          throw new DeployError(
            'command-failed',
            `SFTP write ${file} on ${req.host}: read back ${got.length} bytes that differ from the ${data.length} written`,
            { host: req.host },
          );
        }),
      );
  } else if (!failed) {
    failed = true; // halted by another part of the transfer: this file is incomplete
  }
  // After a stall or cancellation the session is closed already; a close request would only wait again.
  const close = req.stalled
    ? undefined
    : req.call<void>(`close ${file}`, (cb) => sftp.close(handle, (err) => cb(err)));
  let error: unknown;
  await all(sent).catch((err: unknown) => (error = err));
  // A close that fails after good writes means the data may not be on disk (NFS, quota): that is a failure too.
  if (close) await close.catch((err: unknown) => (error ??= err));
  if (error !== undefined) throw error;
  if (req.failure) throw req.failure;
  if (failed) {
    throw new DeployError(
      'command-failed',
      `SFTP write ${file} on ${req.host}: stopped after another file failed`,
      {
        host: req.host,
      },
    );
  }
}

export async function writeFile(
  sftp: SFTPWrapper,
  host: string,
  file: string,
  data: Buffer,
  mode: number,
  opts: WriteOptions & SftpOptions = {},
): Promise<void> {
  const req = new Requests(sftp, host, opts);
  try {
    await writeWith(req, file, data, mode, opts, new Semaphore(WINDOW));
  } finally {
    req.dispose();
  }
}

/**
 * Reads a whole (small) file, or undefined when it cannot be read (missing, no permission), under the same
 * limits as writes: sftp.readFile alone would wait forever on a stalled server. Open, then the size and the
 * first chunk together, then any further chunks together; the close is sent without waiting for its answer,
 * because nothing about the data depends on it.
 */
export async function readFileIfExists(
  sftp: SFTPWrapper,
  host: string,
  file: string,
  opts: SftpOptions = {},
): Promise<Buffer | undefined> {
  const req = new Requests(sftp, host, opts);
  const what = `read ${file}`;
  const read = (handle: Buffer, at: number) =>
    req.call<Buffer>(what, (cb) =>
      sftp.read(handle, Buffer.alloc(CHUNK), 0, CHUNK, at, (err, n, buf) =>
        cb(err, err ? undefined : buf.subarray(0, n)),
      ),
    );
  let handle: Buffer | undefined;
  try {
    handle = await req.call<Buffer>(what, (cb) => sftp.open(file, 'r', cb));
    const h = handle;
    const [st, first] = await Promise.all([req.call<Stats>(what, (cb) => sftp.fstat(h, cb)), read(h, 0)]);
    const chunks = [first];
    let got = first.length;
    let last = first.length;
    if (last === CHUNK && st.size > got) {
      const offsets: number[] = [];
      for (let at = got; at < st.size; at += CHUNK) offsets.push(at);
      const rest = await mapLimit(offsets, WINDOW, (at) => read(h, at));
      for (const r of rest) {
        chunks.push(r);
        got += r.length;
        last = r.length;
        if (r.length < CHUNK) break; // the file shrank meanwhile
      }
    }
    // A file that grew since fstat: read on until a short read.
    while (last === CHUNK) {
      const r = await read(h, got);
      chunks.push(r);
      got += r.length;
      last = r.length;
    }
    return Buffer.concat(chunks, got);
  } catch (err) {
    if (err instanceof DeployError && err.errorClass === 'command-failed') return undefined;
    throw err;
  } finally {
    const h = handle;
    if (h && !req.stalled) {
      void req.call<void>(`close ${file}`, (cb) => sftp.close(h, (e) => cb(e))).catch(() => undefined);
      req.detachSignal(); // the close keeps its watchdog until it is answered
    } else req.dispose();
  }
}

/** SFTP status codes the file-system requests below tell apart. */
export const SFTP_STATUS = { noSuchFile: 2, permissionDenied: 3, opUnsupported: 8 } as const;

/** The SFTP status code behind a failed request, where the server sent one. */
export function sftpStatusOf(err: unknown): number | undefined {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  return typeof cause?.code === 'number' ? cause.code : undefined;
}

/**
 * The server refused the request as such (unknown to it, or denied by its configuration, as `sftp-server -P`
 * does), not because of the file it names.
 */
export function isRefused(err: unknown): boolean {
  const code = sftpStatusOf(err);
  return code === SFTP_STATUS.opUnsupported || code === SFTP_STATUS.permissionDenied;
}

/**
 * The extensions the server announced in its VERSION packet. ssh2 keeps them on the session, unexported; an
 * extended request the server did not announce throws in ssh2, so callers ask here first.
 */
export function serverExtensions(sftp: SFTPWrapper): ReadonlySet<string> {
  const announced = (sftp as unknown as { _extensions?: Record<string, unknown> })._extensions;
  return new Set(Object.keys(announced ?? {}));
}

/** Runs one request under the session's limits. */
async function one<T>(
  sftp: SFTPWrapper,
  host: string,
  what: string,
  opts: SftpOptions,
  fn: (cb: (err: Error | null | undefined, v?: T) => void) => void,
): Promise<T> {
  const req = new Requests(sftp, host, opts);
  try {
    return await req.call<T>(what, fn);
  } finally {
    req.dispose();
  }
}

/**
 * What is at each path, all asked at once: `file` (a regular file, links followed), `other` (anything else,
 * not followed) or `none`. Any answer but "no such file" that leaves a path unknown is an error.
 */
export async function pathKinds(
  sftp: SFTPWrapper,
  host: string,
  paths: string[],
  opts: SftpOptions = {},
): Promise<('file' | 'other' | 'none')[]> {
  const req = new Requests(sftp, host, opts);
  const kind = async (p: string): Promise<'file' | 'other' | 'none'> => {
    const st = await req
      .call<Stats>(`lstat ${p}`, (cb) => sftp.lstat(p, cb))
      .catch((err: unknown) => {
        if (sftpStatusOf(err) === SFTP_STATUS.noSuchFile) return undefined;
        throw err;
      });
    if (!st) return 'none';
    if (st.isFile()) return 'file';
    if (!st.isSymbolicLink()) return 'other';
    const target = await req.call<Stats>(`stat ${p}`, (cb) => sftp.stat(p, cb)).catch(() => undefined);
    return target?.isFile() ? 'file' : 'other';
  };
  try {
    return await Promise.all(paths.map(kind));
  } finally {
    req.dispose();
  }
}

/** A second name for a file (hardlink@openssh.com): no data copied, no space needed for the data. */
export function hardlink(
  sftp: SFTPWrapper,
  host: string,
  target: string,
  link: string,
  opts: SftpOptions = {},
): Promise<void> {
  return one<void>(sftp, host, `link ${target} ${link}`, opts, (cb) =>
    sftp.ext_openssh_hardlink(target, link, (err) => cb(err)),
  );
}

/** Renames over an existing file atomically (posix-rename@openssh.com; plain SFTP rename refuses to replace). */
export function replaceFile(
  sftp: SFTPWrapper,
  host: string,
  from: string,
  to: string,
  opts: SftpOptions = {},
): Promise<void> {
  return one<void>(sftp, host, `rename ${from} ${to}`, opts, (cb) =>
    sftp.ext_openssh_rename(from, to, (err) => cb(err)),
  );
}

/** Creates an empty file that must not exist yet: its existence is the record. */
export async function createEmpty(
  sftp: SFTPWrapper,
  host: string,
  file: string,
  mode: number,
  opts: SftpOptions = {},
): Promise<void> {
  const handle = await one<Buffer>(sftp, host, `create ${file}`, opts, (cb) =>
    sftp.open(file, 'wx', { mode }, cb),
  );
  await one<void>(sftp, host, `close ${file}`, opts, (cb) => sftp.close(handle, (err) => cb(err)));
}

/**
 * Appends to a log file (created with `mode` where missing) as `>>` does: opened for append, so each write
 * lands at the end whatever its offset says; the writes and the close sent together after the open.
 */
export async function appendToFile(
  sftp: SFTPWrapper,
  host: string,
  file: string,
  data: Buffer,
  mode: number,
  opts: SftpOptions = {},
): Promise<void> {
  const req = new Requests(sftp, host, opts);
  try {
    const handle = await req.call<Buffer>(`open ${file}`, (cb) => sftp.open(file, 'a', { mode }, cb));
    // sftp-server handles a session's requests in order, so the parts of a long line land in order too.
    const sent: Promise<void>[] = [];
    for (let at = 0; at < data.length; at += CHUNK) {
      const n = Math.min(CHUNK, data.length - at);
      sent.push(
        req.call<void>(`append ${file}`, (cb) => sftp.write(handle, data, at, n, at, (err) => cb(err))),
      );
    }
    sent.push(req.call<void>(`close ${file}`, (cb) => sftp.close(handle, (err) => cb(err))));
    await all(sent);
  } finally {
    req.dispose();
  }
}

/**
 * Makes the folder's entries durable (a rename is on disk once its folder is synced): the folder opened read-only
 * as a file, which OpenSSH's sftp-server allows, and fsync@openssh.com on that handle. Open, then the fsync and
 * the close together.
 */
export async function fsyncFolder(
  sftp: SFTPWrapper,
  host: string,
  dir: string,
  opts: SftpOptions = {},
): Promise<void> {
  const req = new Requests(sftp, host, opts);
  try {
    const handle = await req.call<Buffer>(`open ${dir}`, (cb) => sftp.open(dir, 'r', cb));
    const synced = req.call<void>(`fsync ${dir}`, (cb) => sftp.ext_openssh_fsync(handle, (err) => cb(err)));
    const closed = req.call<void>(`close ${dir}`, (cb) => sftp.close(handle, (err) => cb(err)));
    await all([synced, closed]);
  } finally {
    req.dispose();
  }
}

/**
 * Uploads a tree of files under `base` (created if missing): every directory in one burst, then the files,
 * many at once, each written like writeFile, with the data of all of them sharing one window of requests.
 */
export async function uploadTree(
  conn: SshConnection,
  base: string,
  files: UploadFile[],
  opts: SftpOptions = {},
): Promise<number> {
  const host = conn.endpoint.name;
  const sftp = await conn.sftp({ signal: opts.signal });
  const dirs = new Set<string>([base]);
  for (const f of files) {
    let d = path.dirname(path.join(base, f.path));
    while (d.length > base.length) {
      dirs.add(d);
      d = path.dirname(d);
    }
  }
  const req = new Requests(sftp, host, opts);
  let bytes = 0;
  try {
    await mkdirs(
      req,
      [...dirs].sort((a, b) => a.length - b.length),
    );
    const window = new Semaphore(WINDOW);
    const handles = Math.max(
      1,
      Math.min(FILES_AT_ONCE, (sftp as { maxOpenHandles?: number }).maxOpenHandles ?? FILES_AT_ONCE),
    );
    // One failed file fails the upload at once; the rest stop sending and close what they opened.
    let firstError: unknown;
    await mapLimit(files, handles, async (f) => {
      if (req.halted) return;
      try {
        await writeWith(req, path.join(base, f.path), f.data, f.mode, {}, window);
        bytes += f.data.length;
      } catch (err) {
        if (firstError === undefined) {
          firstError = err;
          req.halted = true;
        }
      }
    });
    // A stall or cancellation is the reason for the whole upload, whichever file noticed first.
    if (firstError !== undefined) throw req.failure ?? firstError;
  } finally {
    req.dispose();
  }
  if (opts.signal?.aborted)
    throw new DeployError('cancelled', `upload to ${host}:${base} was cancelled`, { host });
  return bytes;
}
