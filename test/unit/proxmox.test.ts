import * as fs from 'node:fs';
import { parseConfig } from '../../src/config/load';
import { DeployError } from '../../src/errors';
import { makeContext } from '../../src/run/context';
import { Redactor } from '../../src/secrets/redact';
import { SnapshotActionError, snapshotProvider } from '../../src/snapshot/provider';
import { ProxmoxClient, parseUpid, type ProxmoxTarget } from '../../src/snapshot/proxmox';
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

const calls = () => pve.requests.map((r) => `${r.method} ${r.path}`);
const taskCalls = () => pve.requests.filter((r) => r.path.includes('/tasks/'));

describe('Proxmox provider against a local HTTPS server speaking the Proxmox API', () => {
  it('creates a snapshot with the token header, then polls the task (UPID percent-encoded) until it stops OK', async () => {
    pve.state.pollsUntilDone = 2;
    const out = await client().createSnapshot('hd-0123456789ab-cafe', 'homelab-deploy 0123456789ab');
    // The UPID is one path segment: its ':' and '@' must travel encoded, or a proxy or Proxmox splits it.
    const status =
      'GET /api2/json/nodes/pve/tasks/UPID%3Apve%3A00000001%3A00000000%3A6560A000%3Aqmsnapshot%3A101%3Aroot%40pam!deploy%3A/status';
    expect(calls()).toEqual(['POST /api2/json/nodes/pve/qemu/101/snapshot', status, status, status]);
    expect(out).toEqual({
      upid: 'UPID:pve:00000001:00000000:6560A000:qmsnapshot:101:root@pam!deploy:',
      node: 'pve',
      exitstatus: 'OK',
    });
    expect(pve.requests.every((r) => r.auth === `PVEAPIToken=${TOKEN}`)).toBe(true);
    expect(new URLSearchParams(pve.requests[0].body).get('snapname')).toBe('hd-0123456789ab-cafe');
    expect(pve.snapshots.map((s) => s.name)).toContain('hd-0123456789ab-cafe');
  });

  it('uses the node and guest type in the paths (an LXC container on node pve-01)', async () => {
    await pve.close();
    pve = await startFakeProxmox({ token: TOKEN, node: 'pve-01', vmid: 230, type: 'lxc' });
    await client({ node: 'pve-01', vmid: 230, type: 'lxc' }).createSnapshot('hd-lxc', 'homelab-deploy x');
    expect(calls()).toEqual([
      'POST /api2/json/nodes/pve-01/lxc/230/snapshot',
      'GET /api2/json/nodes/pve-01/tasks/UPID%3Apve-01%3A00000001%3A00000000%3A6560A000%3Avzsnapshot%3A230%3Aroot%40pam!deploy%3A/status',
      expect.stringMatching(/\/status$/),
    ]);
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

  it('rolls back and starts the stopped VM again, returning both tasks', async () => {
    const c = client();
    await c.createSnapshot('hd-aaa', 'x');
    pve.requests.length = 0;
    const outcomes = await c.rollback('hd-aaa');
    expect(calls().filter((c) => !c.includes('/tasks/'))).toEqual([
      'POST /api2/json/nodes/pve/qemu/101/snapshot/hd-aaa/rollback',
      'GET /api2/json/nodes/pve/qemu/101/status/current',
      'POST /api2/json/nodes/pve/qemu/101/status/start',
    ]);
    expect(outcomes.map((o) => o.upid.split(':')[5])).toEqual(['qmrollback', 'qmstart']);
    expect(pve.state.vm).toBe('running');
  });

  it('a task ending "WARNINGS: n" succeeded: the warnings come from the task log', async () => {
    pve.state.taskExit = 'WARNINGS: 2';
    pve.state.taskLog = [
      "snapshotting 'drive-scsi0' (local-lvm:vm-101-disk-0)",
      'WARN: no efidisk configured! Using temporary efivars disk.',
      'WARN: guest agent not running, filesystem not frozen',
    ];
    const out = await client().createSnapshot('hd-warn', 'homelab-deploy x');
    expect(out.exitstatus).toBe('WARNINGS: 2');
    expect(out.warnings).toEqual([
      'WARN: no efidisk configured! Using temporary efivars disk.',
      'WARN: guest agent not running, filesystem not frozen',
    ]);
    expect(calls().at(-1)).toMatch(
      /^GET \/api2\/json\/nodes\/pve\/tasks\/UPID%3A.*%3A\/log\?start=0&limit=500$/,
    );
    // Anything but OK or "WARNINGS: <n>" is the task's error text, even when it mentions warnings.
    pve.state.taskExit = 'WARNINGS: disk full';
    const bad = await failure(client().createSnapshot('hd-warn2', 'x'));
    expect(bad.errorClass).toBe('command-failed');
    expect(bad.message).toMatch(
      /^Proxmox snapshot hd-warn2 on pve\/qemu\/101 failed \(task UPID:pve:.*\): WARNINGS: disk full$/,
    );
  });

  it('an answer that is not a UPID fails at once, naming the call and the expected format', async () => {
    pve.state.nextTaskAnswer = null;
    const none = await failure(client().createSnapshot('hd-n', 'x'));
    expect(none.errorClass).toBe('command-failed');
    expect(none.message).toBe(
      'Proxmox POST /api2/json/nodes/pve/qemu/101/snapshot (snapshot on pve/qemu/101) answered null, expected a task id "UPID:node:pid:pstart:starttime:type:id:user:"',
    );
    pve.state.nextTaskAnswer = 'UPID:pve:12:x';
    const short = await failure(client().deleteSnapshot('hd-n'));
    expect(short.message).toContain('answered "UPID:pve:12:x", expected a task id "UPID:node:');
    expect(taskCalls()).toHaveLength(0);
    expect(parseUpid('UPID:pve:000A1B2C:0C5D9F11:6560A000:qmsnapshot:101:root@pam:')).toEqual({
      upid: 'UPID:pve:000A1B2C:0C5D9F11:6560A000:qmsnapshot:101:root@pam:',
      node: 'pve',
    });
    expect(parseUpid('UPID:pve:000A1B2C:0C5D9F11:6560A000:qmsnapshot:101:root@pam')).toBeUndefined();
  });

  it('a task still running after task_timeout is a timeout naming the VM and the UPID', async () => {
    pve.state.pollsUntilDone = Infinity;
    const t0 = Date.now();
    const err = await failure(client({ taskTimeoutMs: 300, pollMs: 50 }).createSnapshot('hd-slow', 'x'));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(err.errorClass).toBe('timeout');
    expect(err.message).toMatch(
      /^Proxmox snapshot hd-slow on pve\/qemu\/101 still running after 0\.3s \(task UPID:pve:00000001:00000000:6560A000:qmsnapshot:101:root@pam!deploy:\); it keeps running on pve/,
    );
    expect(taskCalls().length).toBeGreaterThanOrEqual(3);
  });

  it('cancellation stops the polling pause, a request in flight, and sends nothing once aborted', async () => {
    pve.state.pollsUntilDone = Infinity;
    const ac = new AbortController();
    const c = client({ pollMs: 10_000, signal: ac.signal });
    const pending = failure(c.createSnapshot('hd-cancel', 'x'));
    await waitFor(() => taskCalls().length === 1);
    const sent = pve.requests.length;
    const t0 = Date.now();
    ac.abort();
    const err = await pending;
    expect(Date.now() - t0).toBeLessThan(500);
    expect(err.errorClass).toBe('cancelled');
    expect(err.message).toMatch(
      /cancelled while waiting for snapshot hd-cancel \(task UPID:pve:.* keeps running on pve\)/,
    );
    await new Promise((r) => setTimeout(r, 300)); // longer than the next poll would have been
    expect(pve.requests).toHaveLength(sent);

    pve.state.delayMs = 10_000;
    const ac2 = new AbortController();
    const inFlight = failure(client({ signal: ac2.signal }).listSnapshots());
    await waitFor(() => pve.requests.length === 3);
    const t1 = Date.now();
    ac2.abort();
    const err2 = await inFlight;
    expect(Date.now() - t1).toBeLessThan(500);
    expect(err2.errorClass).toBe('cancelled');
    expect(err2.message).toContain('GET 127.0.0.1');

    const n = pve.requests.length;
    const before = await failure(client({ signal: AbortSignal.abort() }).createSnapshot('hd-never', 'x'));
    expect(before.errorClass).toBe('cancelled');
    expect(pve.requests).toHaveLength(n);
  });

  it('a rollback under way is finished and the guest started even if the run is cancelled meanwhile', async () => {
    await client().createSnapshot('hd-back', 'x');
    pve.state.pollsUntilDone = 3;
    const ac = new AbortController();
    const c = client({ pollMs: 50, signal: ac.signal });
    const done = c.rollback('hd-back');
    await waitFor(() => calls().some((x) => x.endsWith('/rollback')));
    ac.abort();
    expect((await done).length).toBe(2);
    expect(pve.state.vm).toBe('running');
    // But a rollback not yet begun is not begun after a cancellation.
    const n = pve.requests.length;
    expect((await failure(c.rollback('hd-back'))).errorClass).toBe('cancelled');
    expect(pve.requests).toHaveLength(n);
  });

  it('prunes only its own snapshots (prefix and description) beyond keep, never protected or foreign ones', async () => {
    const c = client();
    for (const n of ['hd-1', 'hd-2', 'hd-3', 'hd-4'])
      await c.createSnapshot(n, 'homelab-deploy 0123456789ab');
    await c.createSnapshot('hd-by-hand', 'operator: before kernel upgrade');
    const doomed = await c.pruneCandidates('hd-', 2, ['hd-4']);
    expect(doomed.map((s) => s.name)).toEqual(['hd-2', 'hd-1']);
    // A protected name that is not among ours does not use up a slot.
    expect((await c.pruneCandidates('hd-', 2, ['hd-gone'])).map((s) => s.name)).toEqual(['hd-2', 'hd-1']);
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

describe('the Proxmox snapshot provider reports what it did', () => {
  const provider = (keep = 2) => {
    const config = parseConfig(
      `version: 1
project: app
defaults:
  ssh: { user: deploy, key: ~/.ssh/id_ed25519, known_hosts: known_hosts }
hosts:
  rtx1080:
    address: 192.0.2.11
    stage: production
    snapshot: { proxmox: { api: "${pve.url}", node: pve, vmid: 101, token_env: PVE_TOKEN, fingerprint: "${pve.fingerprint}", task_timeout: 5s }, keep: ${keep} }
`,
      '/tmp/hd-proxmox-test.yml',
      '/tmp',
    );
    const ctx = makeContext(config, {
      runToken: 'feedc0de0001',
      env: { PVE_TOKEN: TOKEN },
      redactor: new Redactor(),
      commit: '0123456789abcdef0123456789abcdef01234567',
      run: { url: 'https://github.example/o/r/actions/runs/7' },
    });
    const host = config.hosts.rtx1080;
    // Proxmox works through its HTTPS API; nothing runs on the host.
    const noShell = { exec: () => Promise.reject(new Error('no commands on the host')) };
    return snapshotProvider(ctx, host, host.snapshot!, noShell);
  };

  it('create, rollback and prune return actions with their task ids and warnings', async () => {
    const p = provider(2);
    const made = await p.create('hd-0123456789ab-feedc0de0001');
    expect(made).toMatchObject({
      action: 'snapshot-created',
      host: 'rtx1080',
      provider: 'proxmox',
      target: 'proxmox pve/qemu/101',
      name: 'hd-0123456789ab-feedc0de0001',
      ok: true,
      tasks: [expect.stringMatching(/^UPID:pve:.*:qmsnapshot:101:/)],
      detail: 'proxmox pve/qemu/101 created snapshot hd-0123456789ab-feedc0de0001',
    });
    expect(made.warnings).toBeUndefined();
    expect(pve.snapshots.at(-1)?.description).toBe(
      'homelab-deploy 0123456789ab https://github.example/o/r/actions/runs/7',
    );

    pve.state.taskExit = 'WARNINGS: 1';
    pve.state.taskLog = ['WARN: guest agent not running'];
    const back = await p.rollback('hd-0123456789ab-feedc0de0001');
    expect(back).toMatchObject({
      action: 'snapshot-rolled-back',
      ok: true,
      tasks: [expect.stringContaining(':qmrollback:'), expect.stringContaining(':qmstart:')],
      warnings: ['WARN: guest agent not running', 'WARN: guest agent not running'],
    });
    expect(back.detail).toContain('and started the guest (warnings: WARN: guest agent not running;');

    pve.state.taskExit = 'OK';
    await p.create('hd-aaaaaaaaaaaa-1');
    await p.create('hd-bbbbbbbbbbbb-1');
    const pruned = await p.prune(['hd-bbbbbbbbbbbb-1']);
    expect(pruned.map((a) => [a.action, a.name, a.ok])).toEqual([
      ['snapshot-deleted', 'hd-0123456789ab-feedc0de0001', true],
    ]);
    expect(pve.snapshots.map((s) => s.name)).toEqual([
      'manual-before-upgrade',
      'hd-aaaaaaaaaaaa-1',
      'hd-bbbbbbbbbbbb-1',
    ]);
  });

  it('a failed deletion stops the prune; the error carries what was deleted and what failed', async () => {
    const p = provider(1);
    for (const n of ['hd-1', 'hd-2', 'hd-3']) await p.create(n);
    pve.state.taskExit = 'VM is locked (backup)';
    const c = client();
    // The first deletion's task fails: the provider stops there and says so.
    const err = await failure(p.prune(['hd-3']));
    expect(err).toBeInstanceOf(SnapshotActionError);
    const actions = (err as SnapshotActionError).actions;
    expect(actions.map((a) => [a.name, a.ok])).toEqual([['hd-2', false]]);
    expect(actions[0].detail).toMatch(
      /^proxmox pve\/qemu\/101 FAILED to delete snapshot hd-2: .*VM is locked \(backup\)$/,
    );
    pve.state.taskExit = 'OK';
    expect((await p.prune(['hd-3'])).map((a) => a.name)).toEqual(['hd-1']);
    expect((await c.listSnapshots()).map((s) => s.name)).toEqual(['manual-before-upgrade', 'hd-3']);
  });
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}
