import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SshConnection, type Endpoint } from '../../src/remote/connection';
import { HostKeyPolicy } from '../../src/remote/known-hosts';
import { runSteps, stepsScript, subshellReason, type Step } from '../../src/remote/steps';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';

let sandbox: SshSandbox;
let conn: SshConnection;

beforeAll(async () => {
  sandbox = await startSshSandbox({ names: ['steps'] });
  conn = await SshConnection.connect(
    endpoint(),
    { privateKey: fs.readFileSync(sandbox.userKeyPath) },
    HostKeyPolicy.fromFile(sandbox.knownHostsPath, []),
  );
}, 60_000);
afterAll(async () => {
  conn?.close();
  await sandbox?.stop();
});

function endpoint(): Endpoint {
  const h = sandbox.host('steps');
  return {
    name: 'steps',
    address: h.address,
    port: h.port,
    user: sandbox.user,
    connectTimeoutMs: 5000,
    keepaliveIntervalMs: 5000,
    keepaliveCount: 3,
    maxChannels: 8,
  };
}

function pgrep(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

const summary = (r: Awaited<ReturnType<typeof runSteps>>) =>
  r.steps.map((s) => [s.name, s.exitCode, s.output?.trim()]);

describe('runSteps framing on a real host', () => {
  it('keeps exit code, output and duration per step; the first failing step ends the script with its code', async () => {
    const r = await runSteps(
      conn,
      [
        { name: 'one', script: 'echo first; sleep 0.3' },
        { name: 'two', script: 'echo out; echo err >&2; exit 3' },
        { name: 'three', script: 'echo never' },
      ],
      { timeoutMs: 10_000 },
    );
    expect(r.ok).toBe(false);
    expect(summary(r)).toEqual([
      ['one', 0, 'first'],
      ['two', 3, 'out\nerr'],
    ]);
    expect(r.failed?.name).toBe('two');
    expect(r.outputs).toEqual({ one: 'first\n', two: 'out\nerr\n' });
    // Timed on the client from the markers: the sleep is in the first step's time, not the second's.
    expect(r.steps[0].durationMs).toBeGreaterThanOrEqual(250);
    expect(r.steps[1].durationMs).toBeLessThan(250);
  });

  it('runs on past a failing optional step, reporting its code', async () => {
    const r = await runSteps(
      conn,
      [
        { name: 'probe', script: 'echo probing; exit 4', optional: true },
        { name: 'after', script: 'echo still here' },
      ],
      { timeoutMs: 10_000 },
    );
    expect(r.ok).toBe(true);
    expect(r.failed).toBeUndefined();
    expect(summary(r)).toEqual([
      ['probe', 4, 'probing'],
      ['after', 0, 'still here'],
    ]);
  });

  it('fails a step that leaves through a failing command under set -e, or a failing function exit', async () => {
    const r = await runSteps(
      conn,
      [
        { name: 'helper', script: 'held() { echo held; exit 3; }\n[ -d / ] && held\necho unreachable' },
        { name: 'next', script: 'echo never' },
      ],
      { timeoutMs: 10_000 },
    );
    expect(summary(r)).toEqual([['helper', 3, 'held']]);
    const e = await runSteps(conn, [{ name: 'strict', script: 'set -e\nfalse\necho unreachable' }], {
      timeoutMs: 10_000,
    });
    expect(summary(e)).toEqual([['strict', 1, '']]);
  });

  it('lets a step end early with success and keeps its shell state away from the next steps', async () => {
    const r = await runSteps(
      conn,
      [
        { name: 'start', script: 'pwd' },
        { name: 'early', script: 'echo done early; exit 0\necho not this' },
        { name: 'move', script: 'cd /tmp || exit 1\nx=from-move\npwd' },
        { name: 'env', script: 'export HD_STEP_VAR=leak\nHOME=/nowhere\necho set' },
        { name: 'opts', script: 'set -e\necho strict' },
        {
          name: 'check',
          script: 'pwd; echo "x=$x var=${HD_STEP_VAR:-unset} home=$HOME"; false; echo not strict',
        },
      ],
      { timeoutMs: 10_000 },
    );
    expect(r.ok).toBe(true);
    const home = sandbox.host('steps').root;
    const start = r.outputs.start.trim();
    expect(r.outputs.early).toBe('done early\n');
    expect(r.outputs.move).toBe('/tmp\n');
    // cd is undone between steps; plain variables are shared (steps are one script), the environment is not.
    expect(r.outputs.check).toBe(`${start}\nx=from-move var=unset home=${home}\nnot strict\n`);
  });

  it('reports a step the shell was killed in, and stops there', async () => {
    const r = await runSteps(
      conn,
      [
        { name: 'one', script: 'echo ok' },
        { name: 'dies', script: 'echo dying; kill -9 $$' },
        { name: 'three', script: 'echo never' },
      ],
      { timeoutMs: 10_000 },
    );
    expect(r.ok).toBe(false);
    expect(summary(r)).toEqual([
      ['one', 0, 'ok'],
      ['dies', null, 'dying'],
    ]);
    expect(r.failed?.name).toBe('dies');
  });

  it('reports the running step of a script killed from outside (kill by token), leaving nothing behind', async () => {
    const marker = `sleep 34${Math.floor(Math.random() * 90) + 10}`;
    const p = runSteps(
      conn,
      [
        { name: 'first', script: 'echo begun' },
        { name: 'long', script: `echo waiting; ${marker}` },
        { name: 'never', script: 'echo never' },
      ],
      { timeoutMs: 60_000 },
    );
    await waitFor(() => pgrep(marker) !== '');
    await conn.kill();
    const r = await p;
    expect(r.ok).toBe(false);
    expect(summary(r)).toEqual([
      ['first', 0, 'begun'],
      ['long', null, 'waiting'],
    ]);
    await waitFor(() => pgrep(marker) === '', 5000);
  });

  it('reports a step whose own command exits 124 as a failed step, not as the remote timeout', async () => {
    const r = await runSteps(conn, [{ name: 'inner-timeout', script: 'timeout 0.1 sleep 5' }], {
      timeoutMs: 10_000,
    });
    expect(summary(r)).toEqual([['inner-timeout', 124, '']]);
    const direct = await runSteps(conn, [{ name: 'exits-124', script: 'echo bye; exit 124' }], {
      timeoutMs: 10_000,
    });
    expect(summary(direct)).toEqual([['exits-124', 124, 'bye']]);
  });

  it('keeps the output of a step apart from markers whatever it prints', async () => {
    const big = 300_000;
    const r = await runSteps(
      conn,
      [
        // No trailing newline, a multi-byte character, and the marker's look-alikes.
        { name: 'odd', script: `printf 'no newline é @@hd-0@@ e0 0'` },
        { name: 'big', script: `head -c ${big} /dev/zero | tr '\\0' x; echo; echo tail` },
        { name: 'script', script: 'ps -o args= -p $$ | head -c 100 >/dev/null; echo seen' },
      ],
      { timeoutMs: 20_000 },
    );
    expect(r.ok).toBe(true);
    expect(r.outputs.odd).toBe('no newline é @@hd-0@@ e0 0');
    expect(r.outputs.big.endsWith('x\ntail\n')).toBe(true);
    expect(r.outputs.big.length).toBeLessThanOrEqual(256 * 1024);
    expect(r.steps[1].output?.endsWith('tail\n')).toBe(true);
    expect(r.outputs.script).toBe('seen\n');
  });

  it('reports a script that does not parse without running any step', async () => {
    const flag = path.join(sandbox.host('steps').root, `ran-${process.pid}`);
    const r = await runSteps(
      conn,
      [
        { name: 'first', script: `touch ${flag}` },
        { name: 'broken', script: 'if then fi (' },
      ],
      { timeoutMs: 10_000 },
    );
    expect(r.ok).toBe(false);
    expect(r.failed?.name).toBe('first');
    expect(r.failed?.exitCode).toBe(2);
    expect(fs.existsSync(flag)).toBe(false);
  });
});

describe('step framing, as text', () => {
  const step = (script: string, extra: Partial<Step> = {}): Step => ({ name: 's', script, ...extra });

  it('runs steps in the script shell unless their text shows they need a subshell', () => {
    const inline = [
      'echo hi',
      'cd /srv/app || exit 1',
      '[ -f x ] || { echo missing; exit 1; }',
      'held() { echo held; exit 3; }',
      'find . -maxdepth 1 -name x -exec rm -f {} + 2>/dev/null; true',
      'docker compose up -d --wait 2>&1',
      'free=$(df -Pk . | awk "NR==2 {print $4}")',
      'exit_code=1; echo "$exit_code"',
      "awk 'NR==2 {print $4}'",
    ];
    for (const s of inline) expect([s, subshellReason(step(s))]).toEqual([s, undefined]);
    const isolated = [
      'exit 0',
      '[ -f x ] && { cat x; exit 0; }',
      'exit',
      'exit $rc',
      'exec >log',
      'set -e',
      'set -o pipefail',
      'trap "rm -f x" EXIT',
      'export A=1',
      'PATH=/opt/bin:$PATH',
      'x=1; IFS=: read -r a b',
      'sleep 10 &',
      'wait',
      '. ./env.sh',
      'umask 077',
      'eval "$cmd"',
      'docker compose exec -T app pytest',
    ];
    for (const s of isolated) expect([s, subshellReason(step(s))]).toEqual([s, expect.any(String)]);
    expect(subshellReason(step('echo hi', { optional: true }))).toMatch(/optional/);
    expect(subshellReason(step('echo hi', { isolated: true }))).toBe('isolated');
  });

  it('frames with shell builtins only: no command substitution, date or subshell for inline steps', () => {
    const text = stepsScript([step('echo a'), step('cd /tmp || exit 1'), step('echo c')], '@@hd-x@@');
    // `$((` is arithmetic, done by the shell itself; `$(` alone would fork.
    expect(text).not.toMatch(/\$\((?!\()|`|date/);
    expect(text).not.toMatch(/\(\s*__hd_s/);
    expect(text.match(/; __hd_s\d 2>&1 <\/dev\/null;/g)).toHaveLength(3);
    // The step after a cd starts in the folder the script started in.
    expect(text).toMatch(/cd "\$__hd_w" 2>\/dev\/null; printf '%s b2/);
    expect(stepsScript([step('exit 0')], '@@hd-x@@')).toMatch(/\( __hd_i=; __hd_s0 \) 2>&1/);
  });
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms}ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
