import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import { selfSignedCert } from './tls';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** The request target exactly as it came over the wire: percent-encoding included, so tests can assert it. */
  path: string;
  auth?: string;
  body: string;
}

export interface FakeTask {
  node: string;
  kind: string;
  polls: number;
  exit: string;
  log: string[];
}

/**
 * A local HTTPS server answering the Proxmox VE endpoints homelab-deploy uses, shaped as the API documents them:
 * {"data": ...} bodies, UPID task ids for long operations, task status "running" then "stopped" + exitstatus
 * ("OK", "WARNINGS: n", or the error text), the task log as [{n, t}], and errors as HTTP status with the message
 * in the status line. Paths are matched segment by segment after percent-decoding each segment, as a real HTTP
 * server does, while `requests` keeps the raw target so a client's encoding is checked, not hidden.
 */
export async function startFakeProxmox(opts: {
  token: string;
  node?: string;
  vmid?: number;
  type?: 'qemu' | 'lxc';
}) {
  const tls = selfSignedCert('pve.example.com');
  const { dir, cert } = tls;
  const node = opts.node ?? 'pve';
  const vmid = opts.vmid ?? 101;
  const type = opts.type ?? 'qemu';
  const requests: RecordedRequest[] = [];
  const snapshots: { name: string; snaptime: number; description: string }[] = [
    { name: 'manual-before-upgrade', snaptime: 1, description: 'taken by hand' },
  ];
  const tasks = new Map<string, FakeTask>();
  const state = {
    vm: 'running',
    failNext: undefined as undefined | { status: number; message: string },
    /** Exit status of tasks started from now on. */
    taskExit: 'OK',
    /** Task-log lines of tasks started from now on (Proxmox logs "WARN: ..." lines for WARNINGS exits). */
    taskLog: [] as string[],
    /** Status polls answered "running" before a task stops; Infinity for a task that never ends. */
    pollsUntilDone: 1,
    /** Answer the next task-starting call with this instead of a UPID. */
    nextTaskAnswer: undefined as unknown,
    /** Hold every answer this long (to cancel a request in flight). */
    delayMs: 0,
  };
  let seq = 0;

  const task = (kind: string): unknown => {
    if (state.nextTaskAnswer !== undefined) {
      const a = state.nextTaskAnswer;
      state.nextTaskAnswer = undefined;
      return a;
    }
    const upid = `UPID:${node}:0000${(++seq).toString(16).padStart(4, '0').toUpperCase()}:00000000:6560A000:${kind}:${vmid}:root@pam!deploy:`;
    tasks.set(upid, { node, kind, polls: 0, exit: state.taskExit, log: [...state.taskLog] });
    return upid;
  };

  const server = https.createServer({ key: tls.key, cert }, (req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const raw = req.url ?? '';
      requests.push({
        method: req.method ?? '',
        path: raw,
        auth: req.headers.authorization,
        body,
      });
      const send = (status: number, data: unknown, message = 'OK') => {
        const answer = () => {
          if (res.destroyed) return;
          res.writeHead(status, message, { 'content-type': 'application/json;charset=UTF-8' });
          res.end(JSON.stringify({ data }));
        };
        if (state.delayMs > 0) setTimeout(answer, state.delayMs);
        else answer();
      };
      if (req.headers.authorization !== `PVEAPIToken=${opts.token}`)
        return send(401, null, 'authentication failure');
      if (state.failNext) {
        const f = state.failNext;
        state.failNext = undefined;
        return send(f.status, null, f.message);
      }
      const [pathPart, query = ''] = raw.split('?');
      let seg: string[];
      try {
        seg = pathPart.split('/').slice(1).map(decodeURIComponent);
      } catch {
        return send(400, null, 'malformed URI');
      }
      const params = new URLSearchParams(body);
      const q = new URLSearchParams(query);
      const M = req.method;
      const is = (...want: (string | null)[]) =>
        seg.length === want.length && want.every((w, i) => w === null || w === seg[i]);
      const vm = ['api2', 'json', 'nodes', node, type, String(vmid)];

      if (M === 'POST' && is(...vm, 'snapshot')) {
        const name = params.get('snapname') ?? '';
        if (!/^[A-Za-z][A-Za-z0-9_-]{1,39}$/.test(name)) {
          res.writeHead(400, 'Parameter verification failed.', { 'content-type': 'application/json' });
          return res.end(
            JSON.stringify({ data: null, errors: { snapname: 'invalid format - invalid configuration ID' } }),
          );
        }
        if (snapshots.some((s) => s.name === name))
          return send(500, null, `snapshot name '${name}' already used`);
        snapshots.push({
          name,
          snaptime: Math.floor(Date.now() / 1000) + seq,
          description: params.get('description') ?? '',
        });
        return send(200, task(type === 'qemu' ? 'qmsnapshot' : 'vzsnapshot'));
      }
      if (M === 'GET' && is(...vm, 'snapshot'))
        return send(200, [
          ...snapshots,
          { name: 'current', description: 'You are here!', running: state.vm === 'running' ? 1 : 0 },
        ]);
      if (M === 'POST' && is(...vm, 'snapshot', null, 'rollback')) {
        if (!snapshots.some((s) => s.name === seg[7]))
          return send(500, null, `snapshot '${seg[7]}' does not exist`);
        state.vm = 'stopped';
        return send(200, task(type === 'qemu' ? 'qmrollback' : 'vzrollback'));
      }
      if (M === 'DELETE' && is(...vm, 'snapshot', null)) {
        const i = snapshots.findIndex((s) => s.name === seg[7]);
        if (i < 0) return send(500, null, `snapshot '${seg[7]}' does not exist`);
        snapshots.splice(i, 1);
        return send(200, task(type === 'qemu' ? 'qmdelsnapshot' : 'vzdelsnapshot'));
      }
      if (M === 'GET' && is(...vm, 'status', 'current')) return send(200, { status: state.vm, vmid });
      if (M === 'POST' && is(...vm, 'status', 'start')) {
        state.vm = 'running';
        return send(200, task(type === 'qemu' ? 'qmstart' : 'vzstart'));
      }
      if (M === 'GET' && is('api2', 'json', 'nodes', node, 'tasks', null, 'status')) {
        const t = tasks.get(seg[5]);
        if (!t) return send(500, null, `unable to parse worker upid '${seg[5]}'`);
        t.polls++;
        return send(
          200,
          t.polls > state.pollsUntilDone
            ? { status: 'stopped', exitstatus: t.exit, upid: seg[5], node: t.node, type: t.kind }
            : { status: 'running', upid: seg[5], node: t.node, type: t.kind },
        );
      }
      if (M === 'GET' && is('api2', 'json', 'nodes', node, 'tasks', null, 'log')) {
        const t = tasks.get(seg[5]);
        if (!t) return send(500, null, `unable to parse worker upid '${seg[5]}'`);
        const start = Number(q.get('start') ?? 0);
        const limit = Number(q.get('limit') ?? 50);
        const lines = [...t.log, `TASK ${t.exit}`].map((text, i) => ({ n: i + 1, t: text }));
        return send(200, lines.slice(start, start + limit));
      }
      send(501, null, `Method '${M} ${pathPart}' not implemented`);
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
    tasks,
    state,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
        fs.rmSync(dir, { recursive: true, force: true });
      }),
  };
}
