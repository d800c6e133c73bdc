import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { DeployError, isRetryable } from '../../src/errors';
import { SshConnection, type Endpoint } from '../../src/remote/connection';
import { HostKeyPolicy } from '../../src/remote/known-hosts';
import { ConnectionPool } from '../../src/remote/pool';
import { Redactor } from '../../src/secrets/redact';
import { writeConfig } from '../fixtures/config';
import {
  banner,
  fingerprintOf,
  keygen,
  SSHD,
  sshdConfig,
  startSshSandbox,
  type SshSandbox,
} from '../helpers/sshd';

let sandbox: SshSandbox;
let tmp: string;
/** An ECDSA key that is not the server's: known_hosts pins only this type for the host. */
let ecdsaPub: string;
let ecdsaFingerprint: string;

beforeAll(async () => {
  // DEBUG1: the server's log shows whether the client went on to authenticate.
  sandbox = await startSshSandbox({ names: ['keys'], logLevel: 'DEBUG1' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-hostkeys-'));
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    'ecdsa',
    '-b',
    '256',
    '-N',
    '',
    '-C',
    '',
    '-f',
    path.join(tmp, 'ecdsa'),
  ]);
  ecdsaPub = fs.readFileSync(path.join(tmp, 'ecdsa.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  ecdsaFingerprint = fingerprintOf(path.join(tmp, 'ecdsa.pub'));
}, 60_000);
afterAll(async () => {
  await sandbox?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function endpoint(address: string, port: number): Endpoint {
  return {
    name: 'keys',
    address,
    port,
    user: sandbox.user,
    connectTimeoutMs: 5000,
    keepaliveIntervalMs: 5000,
    keepaliveCount: 3,
    maxChannels: 8,
  };
}
const key = () => ({ privateKey: fs.readFileSync(sandbox.userKeyPath) });

async function refusal(p: Promise<unknown>): Promise<DeployError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DeployError) return err;
    throw err;
  }
  throw new Error('expected the connection to be refused');
}

async function logUntil(from: number, until: RegExp): Promise<string> {
  for (let i = 0; i < 40; i++) {
    const text = sandbox.log('keys').slice(from);
    if (until.test(text)) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd log never showed ${until}`);
}

describe('host key type mismatch', () => {
  it('is a host-key failure naming the pinned type and fingerprint and what the server has, never retried', async () => {
    const h = sandbox.host('keys');
    const file = path.join(tmp, 'ecdsa_only');
    fs.writeFileSync(file, `[${h.address}]:${h.port} ${ecdsaPub}\n`);
    const before = sandbox.log('keys').length;
    const err = await refusal(
      SshConnection.connect(endpoint(h.address, h.port), key(), HostKeyPolicy.fromFile(file, [])),
    );
    expect(err.errorClass).toBe('host-key');
    expect(isRetryable(err)).toBe(false);
    expect(err.message).toBe(
      `host key type mismatch for keys ([${h.address}]:${h.port}): ${file} holds only ecdsa-sha2-nistp256 for it ` +
        `(expected ecdsa-sha2-nistp256 ${ecdsaFingerprint}), but the server offers only ssh-ed25519 and showed ` +
        `ssh-ed25519 ${h.hostKeyFingerprint}; add the server's ssh-ed25519 key to ${file} (or pin its fingerprint) ` +
        `after checking it out of band`,
    );
    // The key it showed was refused before any authentication.
    const log = await logUntil(before, /Disconnected from .*\[preauth\]|Connection closed by .*\[preauth\]/);
    expect(log).not.toMatch(/userauth|Accepted|Failed /i);
  });

  it('is reported the same through the pool, with the host named', async () => {
    const h = sandbox.host('keys');
    const file = path.join(tmp, 'ecdsa_only_pool');
    fs.writeFileSync(file, `[${h.address}]:${h.port} ${ecdsaPub}\n`);
    const config = loadConfig(
      writeConfig(`version: 1
project: app
hosts:
  keys: { address: ${h.address}, stage: staging, ssh: { user: ${sandbox.user}, port: ${h.port}, key: ${sandbox.userKeyPath}, known_hosts: ${file} } }
`),
    );
    const pool = new ConnectionPool(config, { env: {}, redactor: new Redactor(), runToken: 'hk1' });
    const err = await refusal(pool.get('keys'));
    expect(err).toMatchObject({ errorClass: 'host-key', host: 'keys' });
    expect(err.message).toContain('host key type mismatch');
    await pool.closeAll();
  });

  it("accepts the server's key when its fingerprint is pinned, whatever types known_hosts holds", async () => {
    const h = sandbox.host('keys');
    const file = path.join(tmp, 'ecdsa_plus_pin');
    fs.writeFileSync(file, `[${h.address}]:${h.port} ${ecdsaPub}\n`);
    const c = await SshConnection.connect(
      endpoint(h.address, h.port),
      key(),
      HostKeyPolicy.fromFile(file, [h.hostKeyFingerprint]),
    );
    expect((await c.exec('echo in', { timeoutMs: 5000 })).stdout).toBe('in\n');
    expect(c.negotiated).toMatchObject({ serverHostKey: 'ssh-ed25519' });
    c.close();
  });

  it('is a host-key failure when the server only has host key types that cannot be checked here (certificates)', async () => {
    const server = await certificateOnlyServer();
    try {
      const file = path.join(tmp, 'cert_known');
      fs.writeFileSync(file, `[${server.address}]:${server.port} ${server.plainPub}\n`);
      const err = await refusal(
        SshConnection.connect(endpoint(server.address, server.port), key(), HostKeyPolicy.fromFile(file, [])),
      );
      expect(err.errorClass).toBe('host-key');
      expect(err.message).toBe(
        `host key type mismatch for keys ([${server.address}]:${server.port}): the server offers only ` +
          `ssh-ed25519-cert-v01@openssh.com, none of which can be verified here; expected ssh-ed25519 ` +
          `${server.fingerprint} from ${file}`,
      );
    } finally {
      await server.stop();
    }
  });
});

/** An sshd whose only host key algorithm is an ed25519 certificate (ssh2 cannot check certificates). */
async function certificateOnlyServer(): Promise<{
  address: string;
  port: number;
  plainPub: string;
  fingerprint: string;
  stop: () => Promise<void>;
}> {
  const dir = fs.mkdtempSync(path.join(tmp, 'cert-'));
  fs.chmodSync(dir, 0o755);
  keygen(path.join(dir, 'ca'));
  const plainPub = keygen(path.join(dir, 'host'));
  execFileSync('ssh-keygen', [
    '-q',
    '-s',
    path.join(dir, 'ca'),
    '-I',
    'test-host',
    '-h',
    path.join(dir, 'host.pub'),
  ]);
  const address = `127.${10 + Math.floor(Math.random() * 240)}.${1 + Math.floor(Math.random() * 250)}.9`;
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, address, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  fs.mkdirSync(path.join(dir, 'home'));
  const cfg =
    sshdConfig({
      listen: `${address}:${port}`,
      hostKey: path.join(dir, 'host'),
      dir,
      authorizedKeys: path.join(sandbox.dir, 'authorized_keys'),
      home: path.join(dir, 'home'),
    }) +
    `HostCertificate ${path.join(dir, 'host-cert.pub')}\nHostKeyAlgorithms ssh-ed25519-cert-v01@openssh.com\n`;
  fs.writeFileSync(path.join(dir, 'sshd_config'), cfg);
  const child: ChildProcess = spawn(
    SSHD,
    ['-D', '-f', path.join(dir, 'sshd_config'), '-E', path.join(dir, 'log')],
    {
      stdio: 'ignore',
    },
  );
  for (let i = 0; i < 100 && !(await banner(address, port)); i++) await new Promise((r) => setTimeout(r, 50));
  return {
    address,
    port,
    plainPub,
    fingerprint: fingerprintOf(path.join(dir, 'host.pub')),
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}
