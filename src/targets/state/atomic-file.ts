import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Temp files of an atomic replace carry this in their name; readers of a state directory skip them. */
export const TEMP_MARK = '.tmp-';

/**
 * Makes a rename or a new entry in `dir` durable. Without it a power cut after the rename can bring back the old
 * name on some file systems, even though the data itself was synced.
 */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.promises.open(dir, 'r');
  try {
    await h.sync();
  } catch (err) {
    // Some file systems (and some platforms) cannot sync a directory handle; the rename is still atomic there.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw err;
  } finally {
    await h.close();
  }
}

/**
 * Replaces `file` so a reader sees the old content or the new, never a mix or a half file: the data goes to a
 * temp file in the same directory (same file system, so the rename is atomic), is synced, renamed over the old
 * name, and the directory is synced. A process killed part way leaves at most a `.<name>.tmp-*` file behind.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}${TEMP_MARK}${randomBytes(6).toString('hex')}`);
  const h = await fs.promises.open(tmp, 'wx', mode);
  try {
    await h.writeFile(data);
    await h.sync();
  } catch (err) {
    await h.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  await h.close();
  try {
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/**
 * Appends one line with a single write(2) on an O_APPEND descriptor, so lines appended at the same time by
 * several processes never interleave on a local file system (the kernel positions and writes each call whole).
 */
export async function appendLine(file: string, line: string, mode = 0o644): Promise<void> {
  if (line.includes('\n'))
    throw new Error(`a log line must be one line: ${JSON.stringify(line.slice(0, 80))}`);
  const buf = Buffer.from(line + '\n', 'utf8');
  const h = await fs.promises.open(file, 'a', mode);
  try {
    const { bytesWritten } = await h.write(buf, 0, buf.length, null);
    if (bytesWritten !== buf.length)
      throw new Error(`short write to ${file}: ${bytesWritten} of ${buf.length} bytes (disk full?)`);
    await h.datasync();
  } finally {
    await h.close();
  }
}

/** Removes `.tmp-` leftovers of writers that were killed, once they are old enough to belong to nobody. */
export async function sweepTempFiles(dir: string, olderThanMs: number): Promise<void> {
  const names = await fs.promises.readdir(dir).catch(() => [] as string[]);
  const now = Date.now();
  await Promise.all(
    names
      .filter((n) => n.startsWith('.') && n.includes(TEMP_MARK))
      .map(async (n) => {
        const p = path.join(dir, n);
        const st = await fs.promises.lstat(p).catch(() => undefined);
        if (st && st.isFile() && now - st.mtimeMs > olderThanMs) await fs.promises.rm(p, { force: true });
      }),
  );
}
