import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { SshConnection } from '../../src/remote/connection';
import { HostKeyPolicy } from '../../src/remote/known-hosts';
import { loadConfig } from '../../src/config/load';
import { deploy } from '../../src/engine';
import { runSteps } from '../../src/remote/steps';
import { releaseIdFor } from '../../src/run/release';
import { Redactor } from '../../src/secrets/redact';
import { git } from '../fixtures/pipeline';
import { banner, keygen, SSHD, sshdConfig } from '../helpers/sshd';
import { testContext } from '../helpers/targets';

/**
 * Counts the processes our commands start on a host, from the server side: the sshd runs every command through
 * a ForceCommand that puts it in a PID namespace of its own, so the next PID there says exactly how many
 * processes the command created (its login shell included). A change that adds forks per command or per step
 * fails here.
 */
let dir: string;
let sshd: ChildProcess | undefined;
let conn: SshConnection;
let address: string;
let port: number;

/**
 * The wrapper: pid 1 is this shell, pid 2 the command's login shell, the probe gets the next free pid. The command
 * reaches the namespace in the environment, not in argv, so no process of the wrapper looks like one of ours to
 * the host-side scripts that look for them (the repair's sweep, the kill). The SFTP subsystem runs sftp-server,
 * as a host without internal-sftp does: one process, counted when the session ends.
 */
const WRAPPER = `#!/bin/sh
out="$1/$(date +%s%N).$$"
printf '%s' "$SSH_ORIGINAL_COMMAND" > "$out.cmd"
HD_COUNTED_CMD="$SSH_ORIGINAL_COMMAND" HD_COUNTED_OUT="$out.procs" exec unshare --pid --fork /bin/sh -c '
  c=$HD_COUNTED_CMD; o=$HD_COUNTED_OUT; unset HD_COUNTED_CMD HD_COUNTED_OUT
  if [ "$c" = internal-sftp ]; then /usr/lib/openssh/sftp-server; else /bin/sh -c "$c"; fi; rc=$?
  p=$(/bin/sh -c "echo \\$\\$"); echo $((p - 2)) > "$o"
  exit $rc'
`;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-procs-'));
  fs.chmodSync(dir, 0o755);
  fs.mkdirSync(path.join(dir, 'log'));
  fs.mkdirSync(path.join(dir, 'home'));
  fs.writeFileSync(path.join(dir, 'wrapper.sh'), WRAPPER, { mode: 0o755 });
  const hostPub = keygen(path.join(dir, 'host'));
  fs.writeFileSync(path.join(dir, 'authorized_keys'), keygen(path.join(dir, 'user')) + '\n');
  address = `127.${10 + Math.floor(Math.random() * 240)}.${1 + Math.floor(Math.random() * 250)}.77`;
  port = await new Promise<number>((resolve) => {
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

/** Each command since the last call, in the order they ran, with the processes it created on the host. */
function countedCommands(): { command: string; procs: number }[] {
  const logDir = path.join(dir, 'log');
  const files = fs
    .readdirSync(logDir)
    .filter((f) => f.endsWith('.procs'))
    .sort();
  // A command still running has its .cmd but no .procs yet: it is counted when it ends.
  return files.map((f) => {
    const cmd = path.join(logDir, f.replace(/\.procs$/, '.cmd'));
    const c = {
      command: fs.readFileSync(cmd, 'utf8'),
      procs: Number(fs.readFileSync(path.join(logDir, f), 'utf8').trim()),
    };
    fs.rmSync(cmd);
    fs.rmSync(path.join(logDir, f));
    return c;
  });
}

/** Processes each command since the last call created on the host, in the order they ran. */
const counted = (): number[] => countedCommands().map((c) => c.procs);

/** Every command since the last call, once all of them have ended (an SFTP session ends with its connection). */
async function settledCommands(): Promise<{ command: string; procs: number }[]> {
  const logDir = path.join(dir, 'log');
  const pending = () =>
    fs
      .readdirSync(logDir)
      .filter((f) => f.endsWith('.cmd') && !fs.existsSync(path.join(logDir, f.replace(/\.cmd$/, '.procs'))));
  for (let i = 0; i < 100 && pending().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(pending()).toEqual([]);
  return countedCommands();
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
        { name: 'after', script: 'echo after' },
      ],
      { timeoutMs: 10_000 },
    );
    expect(withSubshells.ok).toBe(true);
    expect(withSubshells.steps.map((s) => s.output)).toContain('after\n');
    expect(counted()).toEqual([2, 4]);
  });

  it('the last step runs in the script’s shell even when it changes the environment or its folder', async () => {
    counted();
    const r = await runSteps(
      conn,
      [
        { name: 'first', script: 'echo first' },
        { name: 'up', script: 'export HD_X=1; cd /tmp || exit 1; echo "up $HD_X $PWD"' },
      ],
      { timeoutMs: 10_000 },
    );
    expect(r.ok).toBe(true);
    expect(r.steps.map((s) => [s.name, s.exitCode, s.output])).toEqual([
      ['first', 0, 'first\n'],
      ['up', 0, 'up 1 /tmp\n'],
    ]);
    const failing = await runSteps(
      conn,
      [
        { name: 'first', script: 'echo a' },
        { name: 'up', script: 'exit 7' },
      ],
      {
        timeoutMs: 10_000,
      },
    );
    expect(failing.failed).toMatchObject({ name: 'up', exitCode: 7 });
    expect(counted()).toEqual([2, 2]);
  });
});

/**
 * One host's redeploy, phase by phase as the pipeline drives it (pre-flight with lock and repair, the env file,
 * the rollback point, upload and switch, a command health check, the release log and pruning, the lock release),
 * and then a whole run through the engine. The figures are exact: a change that adds forks to any phase, or
 * channels to the run, fails here.
 */
describe('processes a deploy starts on the host', () => {
  let repo: string;
  let hostPath: string;
  let configPath: string;
  const env = { ...process.env, HD_COUNT_SECRET: 'counted-secret-1' };
  const envFile = 'HD_COUNT_SECRET=counted-secret-1\n' + 'X=1\n'.repeat(500);

  const commit = (label: string): string => {
    fs.writeFileSync(path.join(repo, 'app', 'REVISION'), label + '\n');
    git(repo, ['add', '-A']);
    git(repo, ['commit', '-q', '-m', label]);
    return git(repo, ['rev-parse', 'HEAD']);
  };

  /** The bench's job: command strategy, a trivial runtime check, the env file, a command health check. */
  const writeConfig = (revision: string) =>
    fs.writeFileSync(
      configPath,
      `version: 1
project: counted
source: app
defaults:
  ssh: { user: ${os.userInfo().username}, key: ${path.join(dir, 'user')}, known_hosts: ${path.join(dir, 'known_hosts')}, connect_timeout: 5s }
  deploy: { strategy: command, up: "true", down: "true" }
  runtime_check: "true"
  min_free_disk: 1MB
hosts:
  h1: { address: ${address}, ssh: { port: ${port} }, path: ${hostPath} }
secrets: { file: .env, keys: [HD_COUNT_SECRET] }
stages:
  - name: fleet
    hosts: [h1]
    health:
      - { name: revision, command: "cat {{host.path}}/current/REVISION", expect: { output: ${revision} } }
`,
    );

  beforeAll(() => {
    repo = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-procs-repo-'));
    hostPath = path.join(dir, 'hosts', 'h1');
    configPath = path.join(repo, 'homelab-deploy.yml');
    fs.mkdirSync(path.join(repo, 'app'));
    git(repo, ['init', '-q', '-b', 'main']);
  });
  afterAll(() => fs.rmSync(repo, { recursive: true, force: true }));

  const context = (token: string, sha: string, secret: string) => {
    const c = testContext(loadConfig(configPath), {
      runToken: token,
      env: { ...env, HD_COUNT_SECRET: secret },
      redactor: new Redactor(),
      commit: sha,
    });
    c.files = [{ path: 'REVISION', data: fs.readFileSync(path.join(repo, 'app', 'REVISION')), mode: 0o644 }];
    return c;
  };

  /** One run's phases against the host as the pipeline calls them; the processes of each. */
  async function phases(token: string, label: string): Promise<Record<string, number[]>> {
    const sha = commit(label);
    writeConfig(label);
    const c = context(token, sha, `secret-${label}`);
    const t = c.targets.get('h1');
    const per: Record<string, number[]> = {};
    await settledCommands();
    const phase = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
      countedCommands();
      const r = await f();
      per[name] = counted();
      return r;
    };
    try {
      const pre = await phase('preflight', () => t.preflight('fleet'));
      await phase('secrets', async () => {
        const res = await t.writeSecrets?.('.env', `HD_COUNT_SECRET=secret-${label}\n${envFile}`);
        expect(res?.state).toBe('written');
      });
      await phase('snapshot', () => t.snapshot(pre.current, { infra: true }));
      const dep = await phase('deploy', () =>
        t.deploy({
          stage: 'fleet',
          previous: pre.current,
          prepared: pre.prepared,
          checkBeforeActivate: () => Promise.resolve([]),
        }),
      );
      expect(dep.ok).toBe(true);
      await phase('health', async () => {
        const res = await t
          .healthSubject('fleet')
          .exec(`cat ${hostPath}/current/REVISION`, { timeoutMs: 10_000, signal: c.signal });
        expect(res.stdout.trim()).toBe(label);
      });
      await phase('settle', () => t.settle({ stage: 'fleet', previous: pre.current, unchanged: false }));
      const record = path.join(hostPath, '.homelab-deploy', 'lock', 'owner.json');
      const held = JSON.parse(fs.readFileSync(record, 'utf8')) as Record<string, unknown>;
      await phase('heartbeat', async () => expect(await t.heartbeat()).toBe(true));
      // The beat rewrote the record whole, with only its heartbeat moved on.
      const beat = JSON.parse(fs.readFileSync(record, 'utf8')) as Record<string, unknown>;
      expect({ ...beat, heartbeatAt: held.heartbeatAt }).toEqual(held);
      expect(Date.parse(String(beat.heartbeatAt))).toBeGreaterThanOrEqual(
        Date.parse(String(held.heartbeatAt)),
      );
      await phase('release', async () => expect(await t.releaseLock()).toBe(true));
    } finally {
      await c.targets.closeAll();
    }
    // The SFTP session (env file, upload) ends with the connection: counted on its own.
    const rest = await settledCommands();
    per.sftp = rest.filter((x) => x.command === 'internal-sftp').map((x) => x.procs);
    expect(rest.filter((x) => x.command !== 'internal-sftp')).toEqual([]);
    return per;
  }

  /**
   * What each phase of a redeploy may start on the host, one command each (the SFTP session is one process,
   * sftp-server). Measured with dash as /bin/sh: 7, 0, 0, 4, 3, 2, 3, 4 and 1, 24 in all (with the env file and
   * the rollback point written by a shell on the host: 34; before these scripts were made to fork less: 23, 13,
   * 4, 9, 3, 9, 5, 8 and the SFTP session, 75 in all).
   */
  const CEILING: Record<string, number> = {
    preflight: 7, // timeout, sh, df, the lock's mkdir and mv, the repair's ps and awk
    // None: the env file is written, read back, linked, renamed and synced with SFTP requests (before: timeout,
    // sh, wc, sha256sum, a link, mv and sync, 7).
    secrets: 0,
    // None: the rollback point is written, renamed in and audited with SFTP requests (before: timeout, sh, mv).
    snapshot: 0,
    deploy: 4, // timeout, sh, mv into releases/, mv of `current` (its link and the env file's come over SFTP)
    health: 3, // timeout, sh, cat
    settle: 2, // timeout, sh
    heartbeat: 3, // timeout, sh, mv
    release: 4, // timeout, sh, mv, rm
    sftp: 1,
  };

  it('each phase of a redeploy stays within its share of processes', async () => {
    await phases('counted00001', 'rev-1');
    const per = await phases('counted00002', 'rev-2');
    for (const [name, ceiling] of Object.entries(CEILING)) {
      expect([name, per[name]?.length]).toEqual([name, ceiling === 0 ? 0 : 1]);
      if (ceiling === 0) continue;
      expect([name, per[name][0] <= ceiling ? 'within' : per[name][0]]).toEqual([name, 'within']);
    }
    const total = Object.values(per)
      .flat()
      .reduce((a, b) => a + b, 0);
    const channels = Object.values(per).flat().length;
    process.stdout.write(
      `processes per phase of a redeploy: ${JSON.stringify(per)}; ${total} in ${channels} channels\n`,
    );
    expect(fs.readlinkSync(path.join(hostPath, 'current'))).toBe(
      `releases/${releaseIdFor(git(repo, ['rev-parse', 'HEAD']))}`,
    );
    expect(fs.existsSync(path.join(hostPath, '.homelab-deploy', 'lock'))).toBe(false);
    expect(fs.readdirSync(path.join(hostPath, 'releases')).filter((f) => f.startsWith('.'))).toEqual([]);
    expect(fs.readdirSync(hostPath).filter((f) => f.includes('.tmp'))).toEqual([]);
    // The release's link to the env file (made over SFTP) leads to this run's values.
    expect(fs.readlinkSync(path.join(hostPath, 'current', '.env'))).toBe('../../shared/.env');
    expect(fs.readFileSync(path.join(hostPath, 'current', '.env'), 'utf8')).toContain(
      'HD_COUNT_SECRET=secret-rev-2',
    );
  }, 60_000);

  it('a whole run through the engine', async () => {
    const sha = commit('rev-engine');
    writeConfig('rev-engine');
    await settledCommands();
    const r = await deploy({ configPath, phase: 'all', ref: 'HEAD', env, redactor: new Redactor() });
    expect(r.status).toBe('success');
    const cmds = await settledCommands();
    const total = cmds.reduce((a, c) => a + c.procs, 0);
    process.stdout.write(
      `processes of a whole redeploy: ${total} in ${cmds.length} channels\n` +
        cmds.map((c) => `  ${c.procs}  ${c.command.slice(0, 160).replace(/\n/g, '\\n')}`).join('\n') +
        '\n',
    );
    expect(fs.readlinkSync(path.join(hostPath, 'current'))).toBe(`releases/${releaseIdFor(sha)}`);
    // The phases above and the health check again in verify: 24 processes in 7 channels, SFTP included (34 in 9
    // with the env file and the rollback point written by a shell; before that: 75 in 9 commands, the SFTP session
    // not counted, a readback of `current` among them). A change that adds a command or a few forks anywhere in the
    // run fails here.
    expect(cmds.length).toBeLessThanOrEqual(7);
    expect(total).toBeLessThanOrEqual(27);
  }, 60_000);
});
