import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SshConnection, type Endpoint } from '../../src/remote/connection';
import { HostKeyPolicy } from '../../src/remote/known-hosts';
import { DeployError } from '../../src/errors';
import { runSteps } from '../../src/remote/steps';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';

let sandbox: SshSandbox;
let tmp: string;

beforeAll(async () => {
  sandbox = await startSshSandbox({ names: ['alpha', 'beta'] });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-remote-'));
}, 60_000);
afterAll(async () => {
  await sandbox?.stop();
});

function endpoint(name: string, over: Partial<Endpoint> = {}): Endpoint {
  const h = sandbox.host(name);
  return {
    name,
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
const key = () => ({ privateKey: fs.readFileSync(sandbox.userKeyPath) });
const policy = (file = sandbox.knownHostsPath) => HostKeyPolicy.fromFile(file, []);

async function connectError(p: Promise<unknown>): Promise<DeployError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DeployError) return err;
    throw err;
  }
  throw new Error('expected the connection to fail');
}

function pgrep(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

describe('remote layer against OpenSSH', () => {
  it('runs commands and reports exit codes and stderr', async () => {
    const c = await SshConnection.connect(endpoint('alpha'), key(), policy());
    const r = await c.exec('echo out; echo err >&2; exit 7', { timeoutMs: 5000 });
    expect(r).toMatchObject({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    const s = await c.exec('cat', { timeoutMs: 5000, stdin: 'from stdin' });
    expect(s.stdout).toBe('from stdin');
    c.close();
  });

  it('refuses a wrong host key before authentication, naming both fingerprints', async () => {
    const file = sandbox.writeKnownHosts(path.join(tmp, 'wrong'), { wrongFor: ['alpha'] });
    const err = await connectError(SshConnection.connect(endpoint('alpha'), key(), policy(file)));
    expect(err.errorClass).toBe('host-key');
    expect(err.message).toContain(sandbox.host('alpha').hostKeyFingerprint);
    expect(err.message).toMatch(/expected ssh-ed25519 SHA256:/);
  });

  it('refuses a host missing from known_hosts (no trust on first use)', async () => {
    const file = path.join(tmp, 'empty');
    fs.writeFileSync(file, '');
    const err = await connectError(SshConnection.connect(endpoint('alpha'), key(), policy(file)));
    expect(err.errorClass).toBe('host-key');
    expect(err.message).toContain('is not in');
  });

  it('accepts hashed known_hosts entries', async () => {
    const file = sandbox.writeKnownHosts(path.join(tmp, 'hashed'), { hashed: true });
    expect(fs.readFileSync(file, 'utf8')).toMatch(/^\|1\|/);
    const c = await SshConnection.connect(endpoint('beta'), key(), policy(file));
    expect((await c.exec('true', { timeoutMs: 5000 })).code).toBe(0);
    c.close();
  });

  it('classifies a wrong key as auth and a stopped host as unreachable', async () => {
    const otherKey = path.join(tmp, 'other');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const auth = await connectError(
      SshConnection.connect(endpoint('alpha'), { privateKey: fs.readFileSync(otherKey) }, policy()),
    );
    expect(auth.errorClass).toBe('auth');
    await sandbox.stopHost('beta');
    try {
      const t0 = Date.now();
      const down = await connectError(SshConnection.connect(endpoint('beta'), key(), policy()));
      expect(down.errorClass).toBe('unreachable');
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await sandbox.startHost('beta');
    }
  });

  it('kills a command that exceeds its timeout: no process is left on the host', async () => {
    const c = await SshConnection.connect(endpoint('alpha'), key(), policy());
    const marker = `sleep 31${Math.floor(Math.random() * 90) + 10}`;
    const err = await connectError(c.exec(`${marker} & ${marker}; echo never`, { timeoutMs: 1000 }));
    expect(err.errorClass).toBe('timeout');
    await new Promise((r) => setTimeout(r, 300));
    expect(pgrep(marker)).toBe('');
    c.close();
  });

  it('kills a cancelled command on the host', async () => {
    const c = await SshConnection.connect(endpoint('alpha'), key(), policy());
    const marker = `sleep 32${Math.floor(Math.random() * 90) + 10}`;
    const ac = new AbortController();
    const p = c.exec(marker, { timeoutMs: 60_000, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 500));
    expect(pgrep(marker)).not.toBe('');
    ac.abort();
    expect((await connectError(p)).errorClass).toBe('cancelled');
    await new Promise((r) => setTimeout(r, 1500));
    expect(pgrep(marker)).toBe('');
    c.close();
  });

  it('queues more commands than channels instead of failing (MaxSessions)', async () => {
    const c = await SshConnection.connect(endpoint('alpha', { maxChannels: 4 }), key(), policy());
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) => c.exec(`echo ${i}`, { timeoutMs: 10_000 })),
    );
    expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 24 }, (_, i) => String(i)));
    c.close();
  });

  it('reaches a host through a jump host', async () => {
    const jump = await SshConnection.connect(endpoint('alpha'), key(), policy());
    const c = await SshConnection.connect(endpoint('beta'), key(), policy(), { via: jump });
    expect((await c.exec('echo $HOME', { timeoutMs: 5000 })).stdout.trim()).toBe(sandbox.host('beta').root);
    c.close();
    jump.close();
  });

  it("keeps each batched step's exit code and output apart, stopping at the first failure", async () => {
    const c = await SshConnection.connect(endpoint('alpha'), key(), policy());
    const r = await runSteps(
      c,
      [
        { name: 'one', script: 'echo first' },
        { name: 'two', script: 'echo second >&2; exit 3' },
        { name: 'three', script: 'echo never' },
      ],
      { timeoutMs: 10_000 },
    );
    expect(r.ok).toBe(false);
    expect(r.steps.map((s) => [s.name, s.exitCode, s.output?.trim()])).toEqual([
      ['one', 0, 'first'],
      ['two', 3, 'second'],
    ]);
    expect(r.failed?.name).toBe('two');
    c.close();
  });
});
