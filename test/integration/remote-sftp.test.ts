import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import { DeployError } from '../../src/errors';
import { SshConnection, type Endpoint } from '../../src/remote/connection';
import { HostKeyPolicy } from '../../src/remote/known-hosts';
import { readFileIfExists, uploadTree, writeFile, type UploadFile } from '../../src/remote/sftp';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';

let sandbox: SshSandbox;

beforeAll(async () => {
  sandbox = await startSshSandbox({ names: ['files'] });
}, 60_000);
afterAll(async () => {
  await sandbox?.stop();
});

function endpoint(over: Partial<Endpoint> = {}): Endpoint {
  const h = sandbox.host('files');
  return {
    name: 'files',
    address: h.address,
    port: h.port,
    user: sandbox.user,
    connectTimeoutMs: 5000,
    keepaliveIntervalMs: 5000,
    keepaliveCount: 3,
    maxChannels: 8,
    ...over,
  };
}
const connect = (over: Partial<Endpoint> = {}, known = sandbox.knownHostsPath) =>
  SshConnection.connect(
    endpoint(over),
    { privateKey: fs.readFileSync(sandbox.userKeyPath) },
    HostKeyPolicy.fromFile(known, []),
  );
const root = () => sandbox.host('files').root;
const fresh = (name: string) => path.join(root(), `${name}-${randomBytes(3).toString('hex')}`);

/**
 * Watches an SFTP session's requests: which were sent, and in how many rounds. A round begins when a request
 * is sent while none is waiting for its answer, so a client that waits for each answer has one round per request.
 */
function watch(sftp: SFTPWrapper): { rounds: number; sent: string[]; answered: number } {
  const w = { rounds: 0, sent: [] as string[], answered: 0 };
  let pending = 0;
  const methods = ['open', 'write', 'fchmod', 'ext_openssh_fsync', 'close', 'mkdir', 'stat', 'read', 'fstat'];
  const target = sftp as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const m of methods) {
    const original = target[m].bind(sftp);
    target[m] = (...args: unknown[]) => {
      const cb = args[args.length - 1] as (...a: unknown[]) => void;
      if (pending === 0) w.rounds++;
      pending++;
      w.sent.push(m);
      return original(...args.slice(0, -1), (...a: unknown[]) => {
        pending--;
        w.answered++;
        cb(...a);
      });
    };
  }
  return w;
}

async function failure(p: Promise<unknown>): Promise<DeployError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DeployError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('SFTP transfers against OpenSSH', () => {
  it('writes an env file in two rounds: the open, then write, chmod, fsync and close together', async () => {
    const c = await connect();
    const sftp = await c.sftp();
    const w = watch(sftp);
    const file = fresh('env');
    const data = randomBytes(2048);
    await writeFile(sftp, 'files', file, data, 0o600, { exclusive: true, fsync: true });
    expect(w.sent).toEqual(['open', 'write', 'fchmod', 'ext_openssh_fsync', 'close']);
    expect(w.rounds).toBe(2);
    expect(fs.readFileSync(file).equals(data)).toBe(true);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    // Exclusive: a second write of the same temp file is refused, and says which file.
    const err = await failure(writeFile(sftp, 'files', file, data, 0o600, { exclusive: true }));
    expect(err.errorClass).toBe('command-failed');
    expect(err.message).toContain(`SFTP open ${file} on files`);
    c.close();
  });

  it('reads a written file back through its handle in the same round as the writes', async () => {
    const c = await connect();
    const sftp = await c.sftp();
    const w = watch(sftp);
    const file = fresh('env-verified');
    // Larger than one read request: the read-back covers every part of it, and the byte past its end.
    const data = randomBytes(40 * 1024);
    await writeFile(sftp, 'files', file, data, 0o600, { exclusive: true, fsync: true, verify: true });
    expect(w.sent).toEqual([
      'open',
      'write',
      'write',
      'fchmod',
      'ext_openssh_fsync',
      'read',
      'read',
      'close',
    ]);
    expect(w.rounds).toBe(2);
    expect(fs.readFileSync(file).equals(data)).toBe(true);
    c.close();
  });

  it('writes a large file with many writes in flight, byte for byte', async () => {
    const c = await connect();
    const sftp = await c.sftp();
    const w = watch(sftp);
    const file = fresh('big');
    const data = randomBytes(3 * 1024 * 1024 + 123);
    await writeFile(sftp, 'files', file, data, 0o644);
    expect(fs.readFileSync(file).equals(data)).toBe(true);
    const writes = w.sent.filter((m) => m === 'write').length;
    expect(writes).toBe(Math.ceil(data.length / 32768));
    // Far fewer rounds than writes: the window keeps dozens in flight.
    expect(w.rounds).toBeLessThan(writes / 10);
    c.close();
  });

  it('uploads a tree: directories in one round, files together, contents and modes intact', async () => {
    const c = await connect();
    const sftp = await c.sftp();
    const base = fresh('tree');
    const files: UploadFile[] = [
      { path: 'compose.yaml', data: Buffer.from('services: {}\n'), mode: 0o644 },
      { path: 'conf/app/settings.ini', data: randomBytes(5000), mode: 0o600 },
      { path: 'conf/app/deep/er/x.bin', data: randomBytes(70_000), mode: 0o640 },
      { path: 'bin/run.sh', data: Buffer.from('#!/bin/sh\necho run\n'), mode: 0o755 },
      { path: 'empty', data: Buffer.alloc(0), mode: 0o644 },
    ];
    const w = watch(sftp);
    expect(await uploadTree(c, base, files)).toBe(files.reduce((n, f) => n + f.data.length, 0));
    for (const f of files) {
      const local = path.join(base, f.path);
      expect([f.path, fs.readFileSync(local).equals(f.data)]).toEqual([f.path, true]);
      expect([f.path, (fs.statSync(local).mode & 0o777).toString(8)]).toEqual([f.path, f.mode.toString(8)]);
    }
    expect(w.sent.filter((m) => m === 'mkdir')).toHaveLength(6); // base, conf, conf/app, .../deep, .../er, bin
    expect(w.rounds).toBeLessThanOrEqual(3); // mkdirs, opens, then writes+chmods+closes
    // Again over the existing tree: existing directories are fine, files are replaced.
    const again = files.map((f) => ({ ...f, data: Buffer.from(`v2 ${f.path}\n`) }));
    await uploadTree(c, base, again);
    for (const f of again) expect(fs.readFileSync(path.join(base, f.path), 'utf8')).toBe(`v2 ${f.path}\n`);
    c.close();
  });

  it('refuses to put a directory where a file is, naming the path', async () => {
    const c = await connect();
    const base = fresh('clash');
    fs.mkdirSync(base);
    fs.writeFileSync(path.join(base, 'conf'), 'a file, not a folder');
    const err = await failure(uploadTree(c, base, [{ path: 'conf/x', data: Buffer.from('x'), mode: 0o644 }]));
    expect(err.errorClass).toBe('command-failed');
    expect(err.message).toContain(`${base}/conf`);
    c.close();
  });

  it('reads small and multi-chunk files, and a missing one as undefined', async () => {
    const c = await connect();
    const sftp = await c.sftp();
    const small = fresh('small');
    fs.writeFileSync(small, 'A=1\n');
    const w = watch(sftp);
    expect((await readFileIfExists(sftp, 'files', small))?.toString()).toBe('A=1\n');
    // Two rounds waited for (open; fstat + read); the close is sent but its answer is not waited for.
    expect(w.sent).toEqual(['open', 'fstat', 'read', 'close']);
    expect(w.answered).toBe(3);
    for (const size of [0, 32768, 32769, 200_000]) {
      const f = fresh(`read${size}`);
      const data = randomBytes(size);
      fs.writeFileSync(f, data);
      expect([size, (await readFileIfExists(sftp, 'files', f))?.equals(data)]).toEqual([size, true]);
    }
    expect(await readFileIfExists(sftp, 'files', fresh('missing'))).toBeUndefined();
    c.close();
  });

  it('fails a transfer whose server stops answering mid-way, drops the session, and recovers', async () => {
    const c = await connect();
    const sftp = await c.sftp();
    const file = fresh('stalled');
    const w = watch(sftp);
    const t0 = Date.now();
    const p = failure(
      writeFile(sftp, 'files', file, randomBytes(16 * 1024 * 1024), 0o600, { timeoutMs: 800 }),
    );
    // Freeze the server once the transfer is under way (some writes answered, many still in flight).
    await waitFor(() => w.answered >= 3, 10_000);
    const frozen = freeze();
    try {
      const err = await p;
      expect(err.errorClass).toBe('timeout');
      expect(err.message).toBe(
        `SFTP write ${file} on files got no answer within 800ms; the SFTP session was closed`,
      );
      expect(Date.now() - t0).toBeLessThan(8000);
    } finally {
      thaw(frozen);
    }
    // The stalled session is gone: the next transfer opens a fresh one and succeeds.
    const next = await c.sftp();
    expect(next).not.toBe(sftp);
    await writeFile(next, 'files', file, Buffer.from('ok\n'), 0o600);
    expect(fs.readFileSync(file, 'utf8')).toBe('ok\n');
    await waitFor(() => c.channelsInUse <= 1, 12_000);
    c.close();
  });

  it('cancels an upload in flight and leaves the connection usable', async () => {
    const c = await connect();
    const base = fresh('cancel');
    const ac = new AbortController();
    const files = Array.from({ length: 40 }, (_, i) => ({
      path: `d${i % 5}/f${i}`,
      data: randomBytes(256 * 1024),
      mode: 0o644,
    }));
    const sftp = await c.sftp();
    const w = watch(sftp);
    const p = failure(uploadTree(c, base, files, { signal: ac.signal }));
    await waitFor(() => w.answered >= 5, 10_000);
    ac.abort();
    const err = await p;
    expect(err.errorClass).toBe('cancelled');
    expect(err.message).toMatch(/^SFTP (write|open|chmod|close) .* on files was cancelled$/);
    const again = await c.sftp();
    await writeFile(again, 'files', path.join(base, 'after'), Buffer.from('x'), 0o644);
    expect(fs.readFileSync(path.join(base, 'after'), 'utf8')).toBe('x');
    c.close();
  });

  it('does not take a slow line for a stalled server: the limit is on silence, not on the whole transfer', async () => {
    // Every chunk is held 100 ms each way and the line carries about 1 MiB/s: the upload takes seconds, but
    // answers keep coming, each well within the limit.
    const proxy = await slowLink(sandbox.host('files').address, sandbox.host('files').port, 100, 1024 * 1024);
    const known = path.join(sandbox.dir, 'known_hosts_proxy');
    const h = sandbox.host('files');
    fs.writeFileSync(known, `[${h.address}]:${proxy.port} ${h.hostKeyPub}\n`);
    try {
      const c = await connect({ port: proxy.port }, known);
      const file = fresh('slow');
      const data = randomBytes(4 * 1024 * 1024);
      const t0 = Date.now();
      await writeFile(await c.sftp(), 'files', file, data, 0o644, { timeoutMs: 2500 });
      expect(Date.now() - t0).toBeGreaterThan(2500);
      expect(fs.readFileSync(file).equals(data)).toBe(true);
      c.close();
    } finally {
      await proxy.close();
    }
  });
});

/** A TCP relay in front of the server that delays every chunk and caps the throughput, like a slow link. */
async function slowLink(
  address: string,
  port: number,
  delayMs: number,
  bytesPerSecond: number,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((client) => {
    const upstream = net.connect({ host: address, port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    // One queue per direction, released in order: timers of different lengths may fire out of order, and a
    // reordered byte stream is a broken SSH connection.
    const relay = (from: net.Socket, to: net.Socket) => {
      const queue: { due: number; data: Buffer }[] = [];
      let free = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const pump = () => {
        timer = undefined;
        while (queue.length > 0 && queue[0].due <= Date.now())
          to.write((queue.shift() as { data: Buffer }).data);
        if (queue.length > 0) timer = setTimeout(pump, queue[0].due - Date.now());
      };
      from.on('data', (d: Buffer) => {
        free = Math.max(free, Date.now()) + (d.length / bytesPerSecond) * 1000;
        queue.push({ due: free + delayMs, data: d });
        if (!timer) timer = setTimeout(pump, queue[0].due - Date.now());
      });
      from.on('close', () => timer && clearTimeout(timer));
    };
    relay(client, upstream);
    relay(upstream, client);
  });
  const p = await new Promise<number>((r) =>
    srv.listen(0, address, () => r((srv.address() as net.AddressInfo).port)),
  );
  return {
    port: p,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms}ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every process under the host's sshd listener (its connections and sessions), SIGSTOPped: a hung server. */
function freeze(): number[] {
  const rootPid = sandbox.host('files').pid;
  const children = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      /* exited meanwhile */
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(rootPid);
  if (out.length === 0) throw new Error(`no sshd session processes under ${rootPid}`);
  for (const p of out) process.kill(p, 'SIGSTOP');
  return out;
}

function thaw(pids: number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGCONT');
    } catch {
      /* gone */
    }
  }
}
