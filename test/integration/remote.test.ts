import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { SshConnection, type Endpoint } from '../../src/remote/connection';
import { HostKeyPolicy } from '../../src/remote/known-hosts';
import { DeployError } from '../../src/errors';
import { runSteps } from '../../src/remote/steps';
import { readFileIfExists, uploadTree, writeFile } from '../../src/remote/sftp';
import { ConnectionPool } from '../../src/remote/pool';
import { loadConfig } from '../../src/config/load';
import { Redactor } from '../../src/secrets/redact';
import { writeConfig } from '../fixtures/config';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';

let sandbox: SshSandbox;
let tmp: string;

beforeAll(async () => {
  // DEBUG1 makes sshd log every key exchange and every authentication request, so tests can show what the
  // client did and did not do on the wire.
  sandbox = await startSshSandbox({ names: ['alpha', 'beta', 'gamma'], logLevel: 'DEBUG1' });
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

/** The host's sshd log written after `from`, once `until` shows up in it (sshd logs a moment after the fact). */
async function logUntil(host: string, from: number, until: RegExp): Promise<string> {
  for (let i = 0; i < 40; i++) {
    const text = sandbox.log(host).slice(from);
    if (until.test(text)) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd log of ${host} never showed ${until}: ${sandbox.log(host).slice(from)}`);
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
    const file = sandbox.writeKnownHosts(path.join(tmp, 'wrong'), { wrongFor: ['gamma'] });
    const before = sandbox.log('gamma').length;
    const err = await connectError(SshConnection.connect(endpoint('gamma'), key(), policy(file)));
    expect(err.errorClass).toBe('host-key');
    expect(err.message).toContain(sandbox.host('gamma').hostKeyFingerprint);
    expect(err.message).toMatch(/expected ssh-ed25519 SHA256:/);
    // The server's log of this one connection: it got as far as sending its host key, and no further.
    const rejected = await logUntil('gamma', before, /Disconnected from .*\[preauth\]/);
    expect(rejected.match(/^Connection from /gm)).toHaveLength(1);
    expect(rejected).toContain('SSH2_MSG_KEX_ECDH_INIT received');
    expect(rejected).not.toMatch(/userauth|publickey|Accepted|Postponed|Failed /i);
    // The same reading of a connection with the right key shows the authentication requests it makes.
    const mark = sandbox.log('gamma').length;
    const c = await SshConnection.connect(endpoint('gamma'), key(), policy());
    c.close();
    const accepted = await logUntil('gamma', mark, /Disconnected from user /);
    expect(accepted).toMatch(/userauth-request for user \S+ service ssh-connection method publickey/);
    expect(accepted).toMatch(/Accepted publickey for /);
  });

  it('refuses a host missing from known_hosts (no trust on first use)', async () => {
    const file = sandbox.writeKnownHosts(path.join(tmp, 'others'));
    fs.writeFileSync(
      file,
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => !l.includes(`[${sandbox.host('alpha').address}]`))
        .join('\n'),
    );
    const err = await connectError(SshConnection.connect(endpoint('alpha'), key(), policy(file)));
    expect(err.errorClass).toBe('host-key');
    expect(err.message).toContain('is not in');
  });

  it('refuses to connect at all when there is nothing to verify the host key against', async () => {
    const file = path.join(tmp, 'empty');
    fs.writeFileSync(file, '');
    const before = sandbox.log('gamma').length;
    const err = await connectError(SshConnection.connect(endpoint('gamma'), key(), policy(file)));
    expect(err.errorClass).toBe('host-key');
    expect(err.message).toContain('no trusted host key for gamma');
    await new Promise((r) => setTimeout(r, 200));
    expect(sandbox.log('gamma').slice(before)).not.toContain('Connection from');
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

  it('kills what a cancelled command started in its own process group or session', async () => {
    const c = await SshConnection.connect(endpoint('alpha'), key(), policy());
    const tag = Math.floor(Math.random() * 90) + 10;
    const nested = `sleep 36${tag}`; // under a nested `timeout`, which makes its own process group
    const detached = `sleep 37${tag}`; // in a new session
    const ac = new AbortController();
    const p = c.exec(`setsid ${detached} & timeout 120 ${nested}; wait`, {
      timeoutMs: 60_000,
      signal: ac.signal,
    });
    await waitFor(() => pgrep(`^${nested}$`) !== '' && pgrep(`^${detached}$`) !== '');
    ac.abort();
    expect((await connectError(p)).errorClass).toBe('cancelled');
    await waitFor(() => pgrep(`^${nested}$`) === '' && pgrep(`^${detached}$`) === '', 3000);
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
  it('kills exactly the command it was asked to: hd-<run>-1 is not hd-<run>-10, and not another run', async () => {
    const run = `k${randomBytes(3).toString('hex')}`;
    const c = await SshConnection.connect(endpoint('alpha'), key(), policy(), { runToken: run });
    // Processes on this machine (the sandbox hosts share it) whose argv ends like our commands' argv does.
    const names = [
      `hd-${run}-1`,
      `hd-${run}-10`,
      `hd-${run}-11`,
      `hd-${run}-21`,
      `hd-${run}x-1`,
      `hd-${run}-1-2`,
    ];
    const procs = Object.fromEntries(names.map((n) => [n, lingering(n)]));
    try {
      await waitFor(() => names.every((n) => pgrep(`${n}$`) !== ''));
      await c.kill(`hd-${run}-1`);
      await waitFor(() => pgrep(`hd-${run}-1$`) === '');
      await new Promise((r) => setTimeout(r, 1500)); // the kill script's second pass
      expect(names.filter((n) => pgrep(`${n}$`) !== '')).toEqual(names.slice(1));
      // Killing every command of the run spares the processes of a run whose token merely starts with ours.
      await c.kill();
      await waitFor(() => pgrep(`hd-${run}-(10|11|21)$`) === '');
      await new Promise((r) => setTimeout(r, 1500));
      expect(names.filter((n) => pgrep(`${n}$`) !== '')).toEqual([`hd-${run}x-1`, `hd-${run}-1-2`]);
    } finally {
      for (const p of Object.values(procs)) killGroup(p);
      c.close();
    }
  });

  it("uses ssh.command_timeout for commands that give no timeout of their own, and the caller's over it", async () => {
    const c = await SshConnection.connect(endpoint('alpha', { commandTimeoutMs: 1000 }), key(), policy());
    const marker = `sleep 33${Math.floor(Math.random() * 90) + 10}`;
    const t0 = Date.now();
    const err = await connectError(c.exec(marker));
    expect(err.errorClass).toBe('timeout');
    expect(err.message).toContain('1s limit');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(pgrep(marker)).toBe('');
    const r = await c.exec('sleep 2; echo done', { timeoutMs: 10_000 });
    expect(r.stdout.trim()).toBe('done');
    c.close();
  });

  it('times out an SFTP upload to a stalled server, naming host and file, and recovers after', async () => {
    const c = await SshConnection.connect(endpoint('beta'), key(), policy());
    await c.sftp(); // the session exists before the server stalls, so the upload's own requests are what hang
    const base = path.join(sandbox.host('beta').root, `up-${randomBytes(3).toString('hex')}`);
    const stopped = freeze('beta');
    try {
      const t0 = Date.now();
      const err = await connectError(
        uploadTree(c, base, [{ path: 'compose.yaml', data: Buffer.from('services: {}\n'), mode: 0o644 }], {
          timeoutMs: 800,
        }),
      );
      expect(err.errorClass).toBe('timeout');
      expect(err.message).toMatch(new RegExp(`SFTP mkdir ${base} on beta got no answer within 800ms`));
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      thaw(stopped);
    }
    const again = await c.sftp();
    const frozen = freeze('beta');
    try {
      const err = await connectError(readFileIfExists(again, 'beta', `${base}/.env`, { timeoutMs: 500 }));
      expect(err.errorClass).toBe('timeout');
      expect(err.message).toContain(`SFTP read ${base}/.env on beta got no answer within 500ms`);
    } finally {
      thaw(frozen);
    }
    // The stalled session was dropped: a new upload opens a fresh one and succeeds.
    await uploadTree(c, base, [{ path: 'a/compose.yaml', data: Buffer.from('x\n'), mode: 0o600 }]);
    expect(fs.readFileSync(path.join(base, 'a', 'compose.yaml'), 'utf8')).toBe('x\n');
    const sftp = await c.sftp();
    expect((await readFileIfExists(sftp, 'beta', `${base}/a/compose.yaml`))?.toString()).toBe('x\n');
    expect(await readFileIfExists(sftp, 'beta', `${base}/missing`)).toBeUndefined();
    expect((fs.statSync(path.join(base, 'a', 'compose.yaml')).mode & 0o777).toString(8)).toBe('600');
    await waitFor(() => c.channelsInUse <= 1); // only the new SFTP session holds a slot
    c.close();
  });

  it('stops a stalled SFTP write when the run is cancelled', async () => {
    const c = await SshConnection.connect(endpoint('beta'), key(), policy());
    const sftp = await c.sftp();
    const file = path.join(sandbox.host('beta').root, `w-${randomBytes(3).toString('hex')}`);
    const stopped = freeze('beta');
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      const t0 = Date.now();
      const err = await connectError(
        writeFile(sftp, 'beta', file, Buffer.alloc(100_000, 1), 0o600, {
          signal: ac.signal,
          timeoutMs: 60_000,
        }),
      );
      expect(err.errorClass).toBe('cancelled');
      expect(err.message).toBe(`SFTP open ${file} on beta was cancelled`);
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      thaw(stopped);
    }
    c.close();
  });

  it('lets hosts without their own key or known_hosts use the fallbacks, and names what is missing without them', async () => {
    const h = sandbox.host('gamma');
    const file = writeConfig(`version: 1
project: app
hosts:
  gamma: { address: ${h.address}, stage: staging, ssh: { user: ${sandbox.user}, port: ${h.port} } }
`);
    const config = loadConfig(file);
    expect(config.notes?.map((n) => n.message)).toEqual([
      `no private key ("key" or "key_env"): this host needs the action's ssh-key input or DEPLOY_SSH_KEY at run time`,
      `no "known_hosts" file or "fingerprints": this host needs the action's known-hosts input or DEPLOY_KNOWN_HOSTS (host keys are always verified) at run time`,
    ]);
    expect(config.notes?.[0].line).toBe(4);
    const redactor = new Redactor();
    const userKey = fs.readFileSync(sandbox.userKeyPath, 'utf8');

    const before = sandbox.log('gamma').length;
    const none = new ConnectionPool(config, { env: {}, redactor, runToken: 'fb1' });
    const noKnown = await connectError(none.get('gamma'));
    expect(noKnown.errorClass).toBe('host-key');
    expect(noKnown.message).toContain(
      `no host key to verify gamma against: the config sets no ssh.known_hosts or ssh.fingerprints for it, and neither the action's known-hosts input nor DEPLOY_KNOWN_HOSTS is set`,
    );
    const noKey = new ConnectionPool(config, {
      env: {},
      redactor,
      runToken: 'fb2',
      fallbackKnownHosts: sandbox.knownHostsPath,
    });
    const e2 = await connectError(noKey.get('gamma'));
    expect(e2.errorClass).toBe('auth');
    expect(e2.message).toBe(
      `no private key for gamma: the config sets no ssh.key or ssh.key_env for it, and neither the action's ssh-key input nor DEPLOY_SSH_KEY is set`,
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(sandbox.log('gamma').slice(before)).not.toContain('Connection from'); // refused before any connection

    // The action's inputs...
    const viaInputs = new ConnectionPool(config, {
      env: {},
      redactor,
      runToken: 'fb3',
      fallbackKey: userKey,
      fallbackKnownHosts: sandbox.knownHostsPath,
    });
    expect((await (await viaInputs.get('gamma')).exec('echo hi', { timeoutMs: 5000 })).stdout).toBe('hi\n');
    await viaInputs.closeAll();
    // ...or the environment variables, for the CLI.
    const viaEnv = new ConnectionPool(config, {
      env: { DEPLOY_SSH_KEY: userKey, DEPLOY_KNOWN_HOSTS: fs.readFileSync(sandbox.knownHostsPath, 'utf8') },
      redactor,
      runToken: 'fb4',
    });
    expect((await (await viaEnv.get('gamma')).exec('echo env', { timeoutMs: 5000 })).stdout).toBe('env\n');
    await viaEnv.closeAll();
    // DEPLOY_KNOWN_HOSTS is a trust list like any other: a host it does not list is refused.
    const wrong = new ConnectionPool(config, {
      env: {
        DEPLOY_SSH_KEY: userKey,
        DEPLOY_KNOWN_HOSTS: fs.readFileSync(
          sandbox.writeKnownHosts(path.join(tmp, 'w2'), { wrongFor: ['gamma'] }),
          'utf8',
        ),
      },
      redactor,
      runToken: 'fb5',
    });
    const e3 = await connectError(wrong.get('gamma'));
    expect(e3.errorClass).toBe('host-key');
    expect(e3.message).toContain('does not match DEPLOY_KNOWN_HOSTS');
  });

  it('falls back to the ssh-key input when key_env is set but empty', async () => {
    const h = sandbox.host('alpha');
    const config = loadConfig(
      writeConfig(`version: 1
project: app
hosts:
  alpha: { address: ${h.address}, stage: staging, ssh: { user: ${sandbox.user}, port: ${h.port}, key_env: HD_ALPHA_KEY, known_hosts: ${sandbox.knownHostsPath} } }
`),
    );
    expect(config.notes).toEqual([]);
    const pool = new ConnectionPool(config, {
      env: { HD_ALPHA_KEY: '' },
      redactor: new Redactor(),
      runToken: 'fb6',
      fallbackKey: fs.readFileSync(sandbox.userKeyPath, 'utf8'),
    });
    expect((await (await pool.get('alpha')).exec('echo ok', { timeoutMs: 5000 })).stdout).toBe('ok\n');
    await pool.closeAll();
    const bare = new ConnectionPool(config, {
      env: { HD_ALPHA_KEY: '' },
      redactor: new Redactor(),
      runToken: 'fb7',
    });
    const err = await connectError(bare.get('alpha'));
    expect(err.message).toBe(
      `no private key for alpha: hosts.alpha.ssh.key_env: HD_ALPHA_KEY is not set or empty, and neither the action's ssh-key input nor DEPLOY_SSH_KEY is set`,
    );
  });
});

describe('channel budget against a server with MaxSessions 3', () => {
  let small: SshSandbox;
  beforeAll(async () => {
    small = await startSshSandbox({ names: ['tiny'], maxSessions: 3 });
  }, 60_000);
  afterAll(async () => {
    await small?.stop();
  });

  it('kills cancelled commands on a full connection without ever opening a session too many', async () => {
    const h = small.host('tiny');
    const c = await SshConnection.connect(
      {
        name: 'tiny',
        address: h.address,
        port: h.port,
        user: small.user,
        connectTimeoutMs: 5000,
        keepaliveIntervalMs: 5000,
        keepaliveCount: 3,
        maxChannels: 3,
      },
      { privateKey: fs.readFileSync(small.userKeyPath) },
      HostKeyPolicy.fromFile(small.knownHostsPath, []),
    );
    const tag = Math.floor(Math.random() * 900) + 100;
    const markers = [1, 2, 3, 4].map((i) => `sleep 4${i}${tag}`);
    const ac = new AbortController();
    const runs = markers.map((m) =>
      c.exec(m, { timeoutMs: 60_000, signal: ac.signal }).catch((e: unknown) => e),
    );
    // Two run (one slot of three stays free for the kill channel); the others wait their turn.
    await waitFor(() => pgrep(markers[0]) !== '' && pgrep(markers[1]) !== '');
    expect(pgrep(markers[2])).toBe('');
    ac.abort();
    const errors = (await Promise.all(runs)) as DeployError[];
    expect(errors.map((e) => e.errorClass)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
    expect(errors.map((e) => e.message)).not.toContainEqual(expect.stringContaining('cannot open a channel'));
    // The kill got its channel even though the two cancelled sessions were still open on the server.
    await waitFor(() => markers.every((m) => pgrep(m) === ''), 5000);
    // A command after that waits until the killed sessions are gone, and then gets its channel.
    const after = await Promise.all([1, 2, 3].map((i) => c.exec(`echo ${i}`, { timeoutMs: 10_000 })));
    expect(after.map((r) => r.stdout.trim())).toEqual(['1', '2', '3']);
    c.close();
  });
});

/** A process whose command line ends with `word`, like the `sh -c ... <token>` of a remote command. */
function lingering(word: string): ChildProcess {
  const p = spawn('sh', ['-c', 'sleep 300; :', word], { detached: true, stdio: 'ignore' });
  p.unref();
  return p;
}

function killGroup(p: ChildProcess): void {
  try {
    process.kill(-(p.pid as number), 'SIGKILL');
  } catch {
    /* gone */
  }
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms}ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every process under the host's sshd listener (its connections and sessions), SIGSTOPped: a hung server. */
function freeze(name: string): number[] {
  const root = sandbox.host(name).pid;
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
  walk(root);
  if (out.length === 0) throw new Error(`no sshd session processes under ${root}`);
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
