import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import { selfSignedCert } from './tls';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  auth?: string;
  body: string;
}

/**
 * A local HTTPS server answering the Proxmox VE endpoints homelab-deploy uses, shaped as the API documents them:
 * {"data": ...} bodies, UPID task ids for long operations, task status "running" then "stopped" + exitstatus,
 * and errors as HTTP status with the message in the status line.
 */
export async function startFakeProxmox(opts: { token: string; node?: string; vmid?: number }) {
  const tls = selfSignedCert('pve.example.com');
  const { dir, cert } = tls;
  const node = opts.node ?? 'pve';
  const vmid = opts.vmid ?? 101;
  const requests: RecordedRequest[] = [];
  const snapshots: { name: string; snaptime: number }[] = [{ name: 'manual-before-upgrade', snaptime: 1 }];
  const tasks = new Map<string, { polls: number; exit: string }>();
  const state = {
    vm: 'running',
    failNext: undefined as undefined | { status: number; message: string },
    taskExit: 'OK',
    pollsUntilDone: 1,
  };
  let seq = 0;
  const base = `/api2/json/nodes/${node}/qemu/${vmid}`;

  const task = (kind: string): string => {
    const upid = `UPID:${node}:0000${(++seq).toString(16).padStart(4, '0')}:00000000:6560A000:${kind}:${vmid}:root@pam!deploy:`;
    tasks.set(upid, { polls: 0, exit: state.taskExit });
    return upid;
  };

  const server = https.createServer({ key: tls.key, cert }, (req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const url = decodeURIComponent(req.url ?? '');
      requests.push({ method: req.method ?? '', path: url, auth: req.headers.authorization, body });
      const send = (status: number, data: unknown, message = 'OK') => {
        res.writeHead(status, message, { 'content-type': 'application/json;charset=UTF-8' });
        res.end(JSON.stringify({ data }));
      };
      if (req.headers.authorization !== `PVEAPIToken=${opts.token}`)
        return send(401, null, 'authentication failure');
      if (state.failNext) {
        const f = state.failNext;
        state.failNext = undefined;
        return send(f.status, null, f.message);
      }
      const params = new URLSearchParams(body);
      let m: RegExpExecArray | null;
      if (req.method === 'POST' && url === `${base}/snapshot`) {
        const name = params.get('snapname') ?? '';
        if (!/^[A-Za-z][A-Za-z0-9_-]{1,39}$/.test(name)) {
          res.writeHead(400, 'Parameter verification failed.', { 'content-type': 'application/json' });
          return res.end(
            JSON.stringify({ data: null, errors: { snapname: 'invalid format - invalid configuration ID' } }),
          );
        }
        if (snapshots.some((s) => s.name === name))
          return send(500, null, `snapshot name '${name}' already used`);
        snapshots.push({ name, snaptime: Math.floor(Date.now() / 1000) + seq });
        return send(200, task('qmsnapshot'));
      }
      if (req.method === 'GET' && url === `${base}/snapshot`)
        return send(200, [...snapshots, { name: 'current', running: 1 }]);
      if (req.method === 'POST' && (m = new RegExp(`^${base}/snapshot/([^/]+)/rollback$`).exec(url))) {
        if (!snapshots.some((s) => s.name === m![1]))
          return send(500, null, `snapshot '${m[1]}' does not exist`);
        state.vm = 'stopped';
        return send(200, task('qmrollback'));
      }
      if (req.method === 'DELETE' && (m = new RegExp(`^${base}/snapshot/([^/]+)$`).exec(url))) {
        const i = snapshots.findIndex((s) => s.name === m![1]);
        if (i < 0) return send(500, null, `snapshot '${m[1]}' does not exist`);
        snapshots.splice(i, 1);
        return send(200, task('qmdelsnapshot'));
      }
      if (req.method === 'GET' && url === `${base}/status/current`)
        return send(200, { status: state.vm, vmid });
      if (req.method === 'POST' && url === `${base}/status/start`) {
        state.vm = 'running';
        return send(200, task('qmstart'));
      }
      if (
        req.method === 'GET' &&
        (m = new RegExp(`^/api2/json/nodes/${node}/tasks/(.+)/status$`).exec(url))
      ) {
        const t = tasks.get(m[1]);
        if (!t) return send(500, null, 'no such task');
        t.polls++;
        return send(
          200,
          t.polls > state.pollsUntilDone
            ? { status: 'stopped', exitstatus: t.exit, upid: m[1] }
            : { status: 'running', upid: m[1] },
        );
      }
      send(501, null, `Method '${req.method} ${url}' not implemented`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    caFile: tls.certFile,
    fingerprint: new X509Certificate(cert).fingerprint256,
    requests,
    snapshots,
    state,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
        fs.rmSync(dir, { recursive: true, force: true });
      }),
  };
}
