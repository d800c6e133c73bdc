import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { Server, utils, type Connection, type SFTPWrapper } from 'ssh2';

/**
 * A small SSH server for the demo, so `npm run demo` needs nothing but Node: exec runs `/bin/sh -c` in the host's
 * directory, and a subset of SFTP serves uploads. The engine talks to it exactly as to OpenSSH.
 */
export interface DemoHost {
  name: string;
  address: string;
  port: number;
  root: string;
  publicKey: string;
  fingerprint: string;
  knownHostsLine(): string;
  stop(): Promise<void>;
}

const { STATUS_CODE } = utils.sftp;

function sftpStatus(err: NodeJS.ErrnoException | null | undefined): number {
  if (!err) return STATUS_CODE.OK;
  if (err.code === 'ENOENT') return STATUS_CODE.NO_SUCH_FILE;
  if (err.code === 'EACCES' || err.code === 'EPERM') return STATUS_CODE.PERMISSION_DENIED;
  return STATUS_CODE.FAILURE;
}

function attrsOf(st: fs.Stats) {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    atime: Math.floor(st.atimeMs / 1000),
    mtime: Math.floor(st.mtimeMs / 1000),
  };
}

function serveSftp(raw: SFTPWrapper, root: string): void {
  // A client may send many requests before the first answer (writes, chmod and close of one file together).
  // OpenSSH's sftp-server handles them one at a time, in order; so does this one: each request's work starts
  // once the request before it has been answered.
  let queue = Promise.resolve();
  const pending = new Map<number, () => void>();
  const REPLIES = new Set(['status', 'handle', 'data', 'name', 'attrs']);
  const sftp = new Proxy(raw, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof prop === 'string' && REPLIES.has(prop) && typeof v === 'function')
        return (reqid: number, ...rest: unknown[]) => {
          const r = (v as (...a: unknown[]) => unknown).call(target, reqid, ...rest);
          pending.get(reqid)?.();
          pending.delete(reqid);
          return r;
        };
      if (prop === 'on')
        return (ev: string, fn: (...args: unknown[]) => void) =>
          target.on(
            ev as never,
            ((...args: unknown[]) => {
              if (ev === 'error' || ev === 'close') return fn(...args);
              const reqid = args[0] as number;
              queue = queue.then(
                () =>
                  new Promise<void>((answered) => {
                    pending.set(reqid, answered);
                    fn(...args);
                  }),
              );
            }) as never,
          );
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as SFTPWrapper;
  const handles = new Map<number, { fd?: number; dir?: string[] }>();
  let next = 0;
  const resolve = (p: string) => path.resolve(root, p);
  const newHandle = (v: { fd?: number; dir?: string[] }) => {
    const id = next++;
    handles.set(id, v);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(id);
    return b;
  };
  const get = (h: Buffer) => (h.length === 4 ? handles.get(h.readUInt32BE(0)) : undefined);
  const done = (reqid: number) => (err: NodeJS.ErrnoException | null) => sftp.status(reqid, sftpStatus(err));

  sftp.on('REALPATH', (reqid, p) => {
    const r = resolve(p || '.');
    sftp.name(reqid, [{ filename: r, longname: r, attrs: {} as never }]);
  });
  for (const ev of ['STAT', 'LSTAT'] as const) {
    sftp.on(ev, (reqid: number, p: string) =>
      (ev === 'STAT' ? fs.stat : fs.lstat)(resolve(p), (err, st) =>
        err ? sftp.status(reqid, sftpStatus(err)) : sftp.attrs(reqid, attrsOf(st)),
      ),
    );
  }
  sftp.on('OPEN', (reqid, p, flags, attrs) => {
    const f = utils.sftp.flagsToString(flags) ?? 'r';
    fs.open(resolve(p), f, attrs?.mode ?? 0o644, (err, fd) =>
      err ? sftp.status(reqid, sftpStatus(err)) : sftp.handle(reqid, newHandle({ fd })),
    );
  });
  sftp.on('WRITE', (reqid, h, offset, data) => {
    const e = get(h);
    if (e?.fd === undefined) return sftp.status(reqid, STATUS_CODE.FAILURE);
    fs.write(e.fd, data, 0, data.length, offset, (err) => done(reqid)(err));
  });
  sftp.on('READ', (reqid, h, offset, length) => {
    const e = get(h);
    if (e?.fd === undefined) return sftp.status(reqid, STATUS_CODE.FAILURE);
    const buf = Buffer.alloc(length);
    fs.read(e.fd, buf, 0, length, offset, (err, n) => {
      if (err) return sftp.status(reqid, sftpStatus(err));
      if (n === 0) return sftp.status(reqid, STATUS_CODE.EOF);
      sftp.data(reqid, buf.subarray(0, n));
    });
  });
  sftp.on('FSTAT', (reqid, h) => {
    const e = get(h);
    if (e?.fd === undefined) return sftp.status(reqid, STATUS_CODE.FAILURE);
    fs.fstat(e.fd, (err, st) => (err ? sftp.status(reqid, sftpStatus(err)) : sftp.attrs(reqid, attrsOf(st))));
  });
  sftp.on('FSETSTAT', (reqid, h, attrs) => {
    const e = get(h);
    if (e?.fd === undefined) return sftp.status(reqid, STATUS_CODE.FAILURE);
    if (attrs.mode === undefined) return sftp.status(reqid, STATUS_CODE.OK);
    fs.fchmod(e.fd, attrs.mode & 0o7777, done(reqid));
  });
  sftp.on('SETSTAT', (reqid, p, attrs) => {
    if (attrs.mode === undefined) return sftp.status(reqid, STATUS_CODE.OK);
    fs.chmod(resolve(p), attrs.mode & 0o7777, done(reqid));
  });
  sftp.on('CLOSE', (reqid, h) => {
    const e = get(h);
    if (!e) return sftp.status(reqid, STATUS_CODE.FAILURE);
    handles.delete(h.readUInt32BE(0));
    if (e.fd === undefined) return sftp.status(reqid, STATUS_CODE.OK);
    fs.close(e.fd, done(reqid));
  });
  sftp.on('OPENDIR', (reqid, p) =>
    fs.readdir(resolve(p), (err, names) =>
      err ? sftp.status(reqid, sftpStatus(err)) : sftp.handle(reqid, newHandle({ dir: names })),
    ),
  );
  sftp.on('READDIR', (reqid, h) => {
    const e = get(h);
    if (!e?.dir) return sftp.status(reqid, STATUS_CODE.FAILURE);
    if (e.dir.length === 0) return sftp.status(reqid, STATUS_CODE.EOF);
    const names = e.dir
      .splice(0, e.dir.length)
      .map((n) => ({ filename: n, longname: n, attrs: {} as never }));
    sftp.name(reqid, names);
  });
  sftp.on('MKDIR', (reqid, p, attrs) => fs.mkdir(resolve(p), { mode: attrs?.mode ?? 0o755 }, done(reqid)));
  sftp.on('RMDIR', (reqid, p) => fs.rmdir(resolve(p), done(reqid)));
  sftp.on('REMOVE', (reqid, p) => fs.unlink(resolve(p), done(reqid)));
  sftp.on('RENAME', (reqid, from, to) => {
    // SFTP v3 RENAME must not overwrite; OpenSSH behaves the same without posix-rename.
    fs.access(resolve(to), (exists) =>
      exists ? fs.rename(resolve(from), resolve(to), done(reqid)) : sftp.status(reqid, STATUS_CODE.FAILURE),
    );
  });
  sftp.on('error', () => undefined);
  sftp.on('close', () => {
    for (const e of handles.values()) if (e.fd !== undefined) fs.close(e.fd, () => undefined);
    handles.clear();
  });
}

function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, sig);
  } catch {
    /* already gone */
  }
}

export async function startDemoHost(opts: {
  name: string;
  root: string;
  authorizedKey: string;
  address?: string;
  user?: string;
}): Promise<DemoHost> {
  const address = opts.address ?? '127.0.0.1';
  const hostKey = utils.generateKeyPairSync('ed25519');
  const allowed = utils.parseKey(opts.authorizedKey);
  if (allowed instanceof Error) throw allowed;
  const allowedKey = Array.isArray(allowed) ? allowed[0] : allowed;
  const hostParsed = utils.parseKey(hostKey.public);
  if (hostParsed instanceof Error) throw hostParsed;
  const hostBlob = (Array.isArray(hostParsed) ? hostParsed[0] : hostParsed).getPublicSSH();
  const children = new Set<ChildProcess>();
  const clients = new Set<Connection>();

  const server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    clients.add(client);
    client.on('error', () => undefined);
    client.on('close', () => clients.delete(client));
    client.on('authentication', (ctx) => {
      const keyOk =
        ctx.method === 'publickey' &&
        ctx.key.algo === allowedKey.type &&
        ctx.key.data.length === allowedKey.getPublicSSH().length &&
        timingSafeEqual(ctx.key.data, allowedKey.getPublicSSH()) &&
        (opts.user === undefined || ctx.username === opts.user);
      if (!keyOk) return ctx.reject(['publickey']);
      if (ctx.signature && !allowedKey.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo))
        return ctx.reject(['publickey']);
      ctx.accept();
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        const env: Record<string, string> = {};
        let child: ChildProcess | undefined;
        session.on('env', (accept, _reject, info) => {
          env[info.key] = info.val;
          accept?.();
        });
        session.on('pty', (_a, reject) => reject?.());
        session.on('shell', (_a, reject) => reject());
        session.on('signal', (accept, _reject, info) => {
          accept?.();
          if (child) killGroup(child, `SIG${info.name}` as NodeJS.Signals);
        });
        session.on('exec', (accept, _reject, info) => {
          const stream = accept();
          // Own process group, so a closed channel or a signal reaches everything the command started.
          const c = spawn('/bin/sh', ['-c', info.command], {
            cwd: opts.root,
            detached: true,
            env: {
              PATH: process.env.PATH ?? '/usr/bin:/bin',
              HOME: opts.root,
              LANG: 'C.UTF-8',
              USER: opts.user ?? 'demo',
              ...env,
            },
          });
          child = c;
          children.add(c);
          stream.on('data', (d: Buffer) => c.stdin?.write(d));
          stream.on('end', () => c.stdin?.end());
          stream.on('error', () => undefined);
          c.stdin?.on('error', () => undefined);
          c.stdout?.on('data', (d: Buffer) => stream.write(d));
          c.stderr?.on('data', (d: Buffer) => stream.stderr.write(d));
          let exited = false;
          c.on('close', (code, signal) => {
            exited = true;
            children.delete(c);
            if (signal) stream.exit(signal.replace(/^SIG/, ''), false, '');
            else stream.exit(code ?? 0);
            stream.end();
          });
          c.on('error', (err) => {
            stream.stderr.write(`${err.message}\n`);
            stream.exit(127);
            stream.end();
          });
          stream.on('close', () => {
            if (!exited) killGroup(c, 'SIGTERM');
          });
        });
        session.on('sftp', (accept) => serveSftp(accept(), opts.root));
      });
    });
  });
  server.on('error', () => undefined);
  await new Promise<void>((r) => server.listen(0, address, r));
  const port = (server.address() as AddressInfo).port;
  const publicKey = hostKey.public.split(' ').slice(0, 2).join(' ');
  return {
    name: opts.name,
    address,
    port,
    root: opts.root,
    publicKey,
    fingerprint: 'SHA256:' + createHash('sha256').update(hostBlob).digest('base64').replace(/=+$/, ''),
    knownHostsLine: () => `[${address}]:${port} ${publicKey}`,
    async stop() {
      for (const c of children) killGroup(c, 'SIGKILL');
      for (const c of clients) c.end();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
