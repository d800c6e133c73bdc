import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { SshConnection } from '../../src/remote/connection';
import { HostKeyPolicy } from '../../src/remote/known-hosts';
import { runSteps } from '../../src/remote/steps';
import { banner, keygen, SSHD, sshdConfig } from '../helpers/sshd';

/**
 * Counts the processes our commands start on a host, from the server side: the sshd runs every command through
 * a ForceCommand that puts it in a PID namespace of its own, so the next PID there says exactly how many
 * processes the command created (its login shell included). A change that adds forks per command or per step
 * fails here.
 */
let dir: string;
let sshd: ChildProcess | undefined;
let conn: SshConnection;

/** The wrapper: pid 1 is this shell, pid 2 the command's login shell, the probe gets the next free pid. */
const WRAPPER = `#!/bin/sh
out="$1/$(date +%s%N).$$"
printf '%s' "$SSH_ORIGINAL_COMMAND" > "$out.cmd"
exec unshare --pid --fork /bin/sh -c '
  /bin/sh -c "$1"; rc=$?
  p=$(/bin/sh -c "echo \\$\\$"); echo $((p - 2)) > "$2"
  exit $rc' wrapper "$SSH_ORIGINAL_COMMAND" "$out.procs"
`;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-procs-'));
  fs.chmodSync(dir, 0o755);
  fs.mkdirSync(path.join(dir, 'log'));
  fs.mkdirSync(path.join(dir, 'home'));
  fs.writeFileSync(path.join(dir, 'wrapper.sh'), WRAPPER, { mode: 0o755 });
  const hostPub = keygen(path.join(dir, 'host'));
  fs.writeFileSync(path.join(dir, 'authorized_keys'), keygen(path.join(dir, 'user')) + '\n');
  const address = `127.${10 + Math.floor(Math.random() * 240)}.${1 + Math.floor(Math.random() * 250)}.77`;
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, address, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  fs.writeFileSync(path.join(dir, 'known_hosts'), `[${address}]:${port} ${hostPub}\n`);
  const cfg =
    sshdConfig({
      listen: `${address}:${port}`,
      hostKey: path.join(dir, 'host'),
      dir,
      authorizedKeys: path.join(dir, 'authorized_keys'),
      home: path.join(dir, 'home'),
    }) + `ForceCommand ${path.join(dir, 'wrapper.sh')} ${path.join(dir, 'log')}\n`;
  fs.writeFileSync(path.join(dir, 'sshd_config'), cfg);
  sshd = spawn(SSHD, ['-D', '-f', path.join(dir, 'sshd_config'), '-E', path.join(dir, 'sshd.log')], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 100 && !(await banner(address, port)); i++) await new Promise((r) => setTimeout(r, 50));
  conn = await SshConnection.connect(
    {
      name: 'counted',
      address,
      port,
      user: os.userInfo().username,
      connectTimeoutMs: 5000,
      keepaliveIntervalMs: 5000,
      keepaliveCount: 3,
      maxChannels: 8,
    },
    { privateKey: fs.readFileSync(path.join(dir, 'user')) },
    HostKeyPolicy.fromFile(path.join(dir, 'known_hosts'), []),
  );
}, 60_000);

afterAll(async () => {
  conn?.close();
  if (sshd && sshd.exitCode === null) {
    const gone = new Promise((r) => sshd?.once('exit', r));
    sshd.kill('SIGTERM');
    await gone;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Processes each command since the last call created on the host, in the order they ran. */
function counted(): number[] {
  const logDir = path.join(dir, 'log');
  const files = fs
    .readdirSync(logDir)
    .filter((f) => f.endsWith('.procs'))
    .sort();
  const n = files.map((f) => Number(fs.readFileSync(path.join(logDir, f), 'utf8').trim()));
  for (const f of fs.readdirSync(logDir)) fs.rmSync(path.join(logDir, f));
  return n;
}

describe('processes started on the host', () => {
  it('the wrapper counts what a command forks', async () => {
    counted();
    // Login shell, the timeout's sh, and the two commands of the pipeline.
    expect((await conn.exec('echo x | cat', { timeoutMs: 10_000 })).stdout).toBe('x\n');
    expect(counted()).toEqual([4]);
  });

  it('an exec starts its login shell (which becomes timeout) and one sh: two processes', async () => {
    counted();
    for (let i = 0; i < 3; i++) await conn.exec('true', { timeoutMs: 10_000 });
    expect(counted()).toEqual([2, 2, 2]);
  });

  it('runSteps frames five steps with no process of its own; only a step that needs a subshell adds one', async () => {
    counted();
    const five = [1, 2, 3, 4, 5].map((i) => ({ name: `s${i}`, script: `echo ${i}` }));
    const r = await runSteps(conn, five, { timeoutMs: 10_000 });
    expect(r.ok).toBe(true);
    expect(r.steps.map((s) => s.output)).toEqual(['1\n', '2\n', '3\n', '4\n', '5\n']);
    const withSubshells = await runSteps(
      conn,
      [
        ...five,
        { name: 'optional', script: 'echo opt; exit 2', optional: true },
        { name: 'early', script: 'echo early; exit 0' },
      ],
      { timeoutMs: 10_000 },
    );
    expect(withSubshells.ok).toBe(true);
    expect(counted()).toEqual([2, 4]);
  });
});
