import { ProxmoxClient, type ProxmoxTarget } from '../../src/snapshot/proxmox';
import { DeployError } from '../../src/errors';
import * as fs from 'node:fs';
import { startFakeProxmox } from '../helpers/fake-proxmox';

const TOKEN = 'root@pam!deploy=5f1c9a3e-0000-4000-8000-b7e2a1c4d9f0';
let pve: Awaited<ReturnType<typeof startFakeProxmox>>;

beforeEach(async () => {
  pve = await startFakeProxmox({ token: TOKEN });
});
afterEach(() => pve.close());

function client(over: Partial<ProxmoxTarget> = {}) {
  return new ProxmoxClient({
    api: pve.url,
    node: 'pve',
    vmid: 101,
    type: 'qemu',
    token: TOKEN,
    trust: { fingerprint: pve.fingerprint },
    timeoutMs: 5000,
    taskTimeoutMs: 10_000,
    pollMs: 20,
    ...over,
  });
}

async function failure(p: Promise<unknown>): Promise<DeployError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DeployError) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

describe('Proxmox provider against a local HTTPS server speaking the Proxmox API', () => {
  it('creates a snapshot with the token header, then polls the task until it stops OK', async () => {
    pve.state.pollsUntilDone = 2;
    await client().createSnapshot('hd-0123456789ab-cafe', 'homelab-deploy 0123456789ab');
    expect(pve.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /api2/json/nodes/pve/qemu/101/snapshot',
      expect.stringMatching(
        /^GET \/api2\/json\/nodes\/pve\/tasks\/UPID:pve:.*:qmsnapshot:101:root@pam!deploy:\/status$/,
      ),
      expect.stringMatching(/tasks\/.*\/status$/),
      expect.stringMatching(/tasks\/.*\/status$/),
    ]);
    expect(pve.requests.every((r) => r.auth === `PVEAPIToken=${TOKEN}`)).toBe(true);
    expect(new URLSearchParams(pve.requests[0].body).get('snapname')).toBe('hd-0123456789ab-cafe');
    expect(pve.snapshots.map((s) => s.name)).toContain('hd-0123456789ab-cafe');
  });

  it('trusts a pinned CA file as well', async () => {
    await client({ trust: { ca: fs.readFileSync(pve.caFile, 'utf8') } }).createSnapshot('hd-ca', 'x');
    expect(pve.snapshots.map((s) => s.name)).toContain('hd-ca');
  });

  it('refuses a server whose certificate does not match, before sending the token', async () => {
    const err = await failure(
      client({ trust: { fingerprint: 'AA:'.repeat(31) + 'AA' } }).createSnapshot('hd-x', 'x'),
    );
    expect(err.errorClass).toBe('host-key');
    expect(err.message).toContain('refusing to send the API token');
    expect(pve.requests).toHaveLength(0);
    const unpinned = await failure(client({ trust: {} }).createSnapshot('hd-x', 'x'));
    expect(unpinned.errorClass).toBe('host-key');
    expect(pve.requests).toHaveLength(0);
  });

  it('rolls back and starts the stopped VM again', async () => {
    const c = client();
    await c.createSnapshot('hd-aaa', 'x');
    pve.requests.length = 0;
    await c.rollback('hd-aaa');
    const calls = pve.requests.filter((r) => !r.path.includes('/tasks/')).map((r) => `${r.method} ${r.path}`);
    expect(calls).toEqual([
      'POST /api2/json/nodes/pve/qemu/101/snapshot/hd-aaa/rollback',
      'GET /api2/json/nodes/pve/qemu/101/status/current',
      'POST /api2/json/nodes/pve/qemu/101/status/start',
    ]);
    expect(pve.state.vm).toBe('running');
  });

  it('prunes only its own snapshots beyond keep, never the protected one or foreign ones', async () => {
    const c = client();
    for (const n of ['hd-1', 'hd-2', 'hd-3', 'hd-4']) await c.createSnapshot(n, 'x');
    const deleted = await c.prune('hd-', 2, ['hd-4']);
    expect(deleted.sort()).toEqual(['hd-1', 'hd-2']);
    expect(pve.snapshots.map((s) => s.name).sort()).toEqual(['hd-3', 'hd-4', 'manual-before-upgrade']);
  });

  it('turns Proxmox error answers into classified errors with the server message', async () => {
    pve.state.failNext = { status: 403, message: 'Permission check failed (/vms/101, VM.Snapshot)' };
    const denied = await failure(client().createSnapshot('hd-p', 'x'));
    expect(denied.errorClass).toBe('auth');
    expect(denied.message).toContain('HTTP 403 Permission check failed (/vms/101, VM.Snapshot)');

    await client().createSnapshot('hd-dup', 'x');
    const dup = await failure(client().createSnapshot('hd-dup', 'x'));
    expect(dup.message).toContain("snapshot name 'hd-dup' already used");

    const bad = await failure(client().createSnapshot('1-bad name', 'x'));
    expect(bad.message).toContain('snapname: invalid format');

    pve.state.taskExit = 'snapshot feature is not available';
    const task = await failure(client().createSnapshot('hd-t', 'x'));
    expect(task.errorClass).toBe('command-failed');
    expect(task.message).toContain('snapshot feature is not available');

    const wrongToken = await failure(client({ token: 'root@pam!deploy=wrong' }).listSnapshots());
    expect(wrongToken.errorClass).toBe('auth');
    expect(wrongToken.message).not.toContain('wrong');
  });
});
