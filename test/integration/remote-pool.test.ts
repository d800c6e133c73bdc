import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import type { Config } from '../../src/config/types';
import { DeployError } from '../../src/errors';
import { ConnectionPool } from '../../src/remote/pool';
import { Redactor } from '../../src/secrets/redact';
import { writeConfig } from '../fixtures/config';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';

let sandbox: SshSandbox;

beforeAll(async () => {
  sandbox = await startSshSandbox({ names: ['alpha', 'beta', 'gamma'] });
}, 60_000);
afterAll(async () => {
  await sandbox?.stop();
});

/** alpha directly; beta and gamma through alpha as their jump host unless `direct`. */
function config(knownHosts = sandbox.knownHostsPath, direct = false): Config {
  const line = (n: string, jump?: string) => {
    const h = sandbox.host(n);
    return `  ${n}: { address: ${h.address}, stage: staging, ssh: { user: ${sandbox.user}, port: ${h.port}, key: ${sandbox.userKeyPath}, known_hosts: ${knownHosts}${jump ? `, jump: ${jump}` : ''} } }`;
  };
  return loadConfig(
    writeConfig(
      [
        'version: 1',
        'project: app',
        'hosts:',
        line('alpha'),
        line('beta', direct ? undefined : 'alpha'),
        line('gamma', direct ? undefined : 'alpha'),
        '',
      ].join('\n'),
    ),
  );
}

const pool = (c: Config, runToken = `p${Date.now() % 100000}`) =>
  new ConnectionPool(c, { env: {}, redactor: new Redactor(), runToken });

/** SSH connections the host's sshd holds now: one child process of the listener per connection. */
function connections(name: string): number {
  const listener = sandbox.host(name).pid;
  let n = 0;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === listener) n++;
    } catch {
      /* exited meanwhile */
    }
  }
  return n;
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms}ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('connection pool lifetime', () => {
  it('closes a released host and opens a fresh connection when the host is needed again', async () => {
    const p = pool(config(sandbox.knownHostsPath, true), 'rel1');
    const first = await p.get('alpha');
    expect((await first.exec('echo "$0"', { timeoutMs: 5000 })).stdout).toBe('hd-rel1-1\n');
    expect(await p.get('alpha')).toBe(first); // reused while held
    await waitFor(() => connections('alpha') === 1);
    await p.release('alpha');
    expect(first.isOpen).toBe(false);
    expect(p.connectedHosts).toEqual([]);
    await waitFor(() => connections('alpha') === 0);
    const second = await p.get('alpha');
    expect(second).not.toBe(first);
    // Command tokens go on across connections of the run: a kill by token never reaches the wrong command.
    expect((await second.exec('echo "$0"', { timeoutMs: 5000 })).stdout).toBe('hd-rel1-2\n');
    await p.closeAll();
    await waitFor(() => connections('alpha') === 0);
  });

  it('lets work in progress finish before a released connection closes', async () => {
    const p = pool(config(sandbox.knownHostsPath, true));
    const c = await p.get('beta');
    const sftp = await c.sftp(); // an open but idle SFTP session does not hold the connection
    expect(sftp).toBeDefined();
    const running = c.exec('sleep 0.5; echo finished', { timeoutMs: 5000 });
    const t0 = Date.now();
    await p.release('beta');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect((await running).stdout).toBe('finished\n');
    expect(c.isOpen).toBe(false);
    // Asked for again while its work was finishing: the connection stays.
    const d = await p.get('beta');
    const busy = d.exec('sleep 0.3; echo again', { timeoutMs: 5000 });
    const releasing = p.release('beta');
    const e = await p.get('beta');
    await releasing;
    expect(e).toBe(d);
    expect(d.isOpen).toBe(true);
    expect((await busy).stdout).toBe('again\n');
    await p.closeAll();
  });

  it('keeps a jump host open while any host reached through it is open, and closes it after the last', async () => {
    const p = pool(config());
    const beta = await p.get('beta');
    const gamma = await p.get('gamma');
    expect((await beta.exec('echo b', { timeoutMs: 5000 })).stdout).toBe('b\n');
    expect(p.connectedHosts.sort()).toEqual(['alpha', 'beta', 'gamma']);
    await waitFor(() => connections('alpha') === 1); // one connection to alpha carries both
    await p.release('beta');
    expect(beta.isOpen).toBe(false);
    expect(p.connectedHosts.sort()).toEqual(['alpha', 'gamma']);
    expect((await gamma.exec('echo g', { timeoutMs: 5000 })).stdout).toBe('g\n');
    await p.release('gamma');
    expect(p.connectedHosts).toEqual([]);
    await waitFor(
      () => connections('alpha') === 0 && connections('beta') === 0 && connections('gamma') === 0,
    );
    // Reached again later: the jump host is reopened with it.
    expect((await (await p.get('gamma')).exec('echo again', { timeoutMs: 5000 })).stdout).toBe('again\n');
    await waitFor(() => connections('alpha') === 1);
    await p.closeAll();
    await waitFor(() => connections('alpha') === 0 && connections('gamma') === 0);
  });

  it('keeps a jump host that has work of its own until that is released too', async () => {
    const p = pool(config());
    const alpha = await p.get('alpha');
    await p.get('beta');
    await p.release('beta');
    expect(alpha.isOpen).toBe(true);
    expect((await alpha.exec('echo still', { timeoutMs: 5000 })).stdout).toBe('still\n');
    // Released while a host behind it is open: it stays for that host, and closes with it.
    const gamma = await p.get('gamma');
    await p.release('alpha');
    expect(alpha.isOpen).toBe(true);
    expect((await gamma.exec('echo g', { timeoutMs: 5000 })).stdout).toBe('g\n');
    await p.release('gamma');
    expect(alpha.isOpen).toBe(false);
    expect(p.connectedHosts).toEqual([]);
  });

  it('gives up its hold on the jump host when a host behind it cannot be reached', async () => {
    const p = pool(config());
    await sandbox.stopHost('gamma');
    try {
      const err = await p.get('gamma').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeployError);
      expect((err as DeployError).errorClass).toBe('unreachable');
      await waitFor(() => p.connectedHosts.length === 0);
      await waitFor(() => connections('alpha') === 0);
    } finally {
      await sandbox.startHost('gamma');
    }
    await p.closeAll();
  });

  describe('a handshake that does not finish in time (a lossy link)', () => {
    /**
     * A TCP front for alpha: the first `stall` connections are accepted and never answered (as when the key
     * exchange's packets are lost), later ones are relayed to alpha's sshd. The host is reached through it.
     */
    async function front(stall: number) {
      const target = sandbox.host('alpha');
      let seen = 0;
      const sockets: net.Socket[] = [];
      const server = net.createServer((c) => {
        sockets.push(c);
        if (++seen <= stall) return;
        const up = net.connect(target.port, target.address);
        sockets.push(up);
        c.pipe(up).pipe(c);
        c.on('error', () => up.destroy());
        up.on('error', () => c.destroy());
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      const knownHosts = path.join(sandbox.dir, `known_hosts_front_${port}`);
      fs.writeFileSync(knownHosts, `[127.0.0.1]:${port} ${target.hostKeyPub.trim()}\n`);
      const c = loadConfig(
        writeConfig(
          [
            'version: 1',
            'project: app',
            'hosts:',
            `  lossy: { address: 127.0.0.1, stage: staging, ssh: { user: ${sandbox.user}, port: ${port}, key: ${sandbox.userKeyPath}, known_hosts: ${knownHosts}, connect_timeout: 1s } }`,
            '',
          ].join('\n'),
        ),
      );
      return {
        config: c,
        attempts: () => seen,
        close: async () => {
          for (const x of sockets) x.destroy();
          await new Promise((r) => server.close(r));
        },
      };
    }

    it('is tried once more, and the second attempt connects', async () => {
      const f = await front(1);
      const p = pool(f.config);
      try {
        const conn = await p.get('lossy');
        expect((await conn.exec('echo ok', { timeoutMs: 5000 })).stdout).toBe('ok\n');
        expect(f.attempts()).toBe(2);
      } finally {
        await p.closeAll();
        await f.close();
      }
    });

    it('fails as a timeout after two attempts, saying so', async () => {
      const f = await front(2);
      const p = pool(f.config);
      try {
        const err = (await p.get('lossy').catch((e: unknown) => e)) as DeployError;
        expect(err).toBeInstanceOf(DeployError);
        expect(err.errorClass).toBe('timeout');
        expect(err.message).toBe('SSH handshake with lossy timed out after 1s (2 attempts)');
        expect(f.attempts()).toBe(2);
        expect(p.connectedHosts).toEqual([]);
      } finally {
        await p.closeAll();
        await f.close();
      }
    });

    it('a port where nothing listens is not tried again', async () => {
      const f = await front(0);
      await f.close();
      const p = pool(f.config);
      const err = (await p.get('lossy').catch((e: unknown) => e)) as DeployError;
      expect(err.errorClass).toBe('unreachable');
      expect(err.message).not.toContain('attempts');
      await p.closeAll();
    });
  });

  it('reads a known_hosts file once per pool, however many hosts name it', async () => {
    const file = path.join(sandbox.dir, 'known_hosts_once');
    fs.copyFileSync(sandbox.knownHostsPath, file);
    const c = config(file, true);
    const p = pool(c);
    await p.get('alpha');
    // Replaced after the first connection: this pool keeps what it read; a new pool reads the new file.
    sandbox.writeKnownHosts(file, { wrongFor: ['beta'] });
    expect((await (await p.get('beta')).exec('echo ok', { timeoutMs: 5000 })).stdout).toBe('ok\n');
    await p.closeAll();
    const later = pool(c);
    const err = (await later.get('beta').catch((e: unknown) => e)) as DeployError;
    expect(err.errorClass).toBe('host-key');
    expect(err.message).toContain('does not match');
    await later.closeAll();
  });
});
