import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { releaseIdFor } from '../../src/run/release';
import { deploy } from '../../src/engine';
import { Redactor } from '../../src/secrets/redact';
import { useHomelab, type Project } from '../fixtures/pipeline';

const env = { ...process.env, HD_TEST_SECRET: 'signal-secret' };
const lab = useHomelab();
const ROOT = path.join(__dirname, '..', '..');

/**
 * The CLI from its TypeScript sources in a real process (real signals, real exit): a require hook that
 * transpiles with the project's own TypeScript, since dist/ is only rebuilt at release time. The sources are
 * loaded through require from a CommonJS launcher: as the main module, a .ts file of an ES-module package would
 * go to Node's ES-module loader, which the hook does not reach.
 */
let hook: string;
let launcher: string;
beforeAll(() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-cli-hook-'));
  hook = path.join(dir, 'ts-hook.cjs');
  launcher = path.join(dir, 'cli.cjs');
  fs.writeFileSync(launcher, `require(${JSON.stringify(path.join(ROOT, 'src', 'cli', 'index.ts'))});\n`);
  fs.writeFileSync(
    hook,
    `const ts = require(${JSON.stringify(require.resolve('typescript'))});
const fs = require('fs');
require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  }).outputText;
  module._compile(out, filename);
};
`,
  );
});

function startCli(args: string[]): {
  child: ChildProcess;
  output: () => string;
  closed: Promise<number | null>;
} {
  const child = spawn(process.execPath, ['-r', hook, launcher, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, output: () => out, closed };
}

function pids(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function running(pattern: string): boolean {
  try {
    execFileSync('pgrep', ['-f', pattern], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, what: () => string, ms = 40_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A project whose stack start sleeps (a recognisable process) when deploying release `slowLabel`, or always.
 * `sleeper` matches the sleep process only, not the shell around it.
 */
async function slowProject(slowLabel: string | 'always'): Promise<{ p: Project; sleeper: string }> {
  const n = `46${Math.floor(Math.random() * 90) + 10}`;
  const sleep = `sleep ${n}`;
  const up =
    slowLabel === 'always'
      ? `sh ./up.sh && ${sleep}`
      : `sh ./up.sh && if grep -qx ${slowLabel} VERSION 2>/dev/null; then ${sleep}; fi`;
  const p = await lab.project({ config: (c) => c.replace('up: sh ./up.sh', `up: "${up}"`) });
  return { p, sleeper: `^sleep ${n}$` };
}

const lockGone = (p: Project) =>
  ['thinkpad', 'rtx1080', 'vps'].every(
    (h) => !fs.existsSync(path.join(p.paths[h], '.homelab-deploy', 'lock')),
  );

describe('CLI signal handling in a real process', () => {
  it('SIGTERM mid-stage: cancels within 7 s, kills the remote command, rolls back, releases every lock', async () => {
    const { p, sleeper } = await slowProject('v2');
    expect(
      (await deploy({ configPath: p.configPath, phase: 'all', ref: 'HEAD', env, redactor: new Redactor() }))
        .status,
    ).toBe('success');
    const v1 = p.current('thinkpad');
    expect(releaseIdFor(p.commit('v2'))).not.toBe(v1);
    const cli = startCli(['run', '--config', p.configPath]);
    await until(() => running(sleeper), cli.output);
    const t0 = Date.now();
    cli.child.kill('SIGTERM');
    const code = await cli.closed;
    expect(Date.now() - t0).toBeLessThan(7000);
    expect(code).toBe(1);
    expect(cli.output()).toContain('SIGTERM: stopping');
    expect(cli.output()).toMatch(/\[cancelled\]/);
    expect(running(sleeper)).toBe(false);
    expect(lockGone(p)).toBe(true);
    expect(p.current('thinkpad')).toBe(v1);
  });

  it('a second signal during the cancellation exits at once with 128+signal', async () => {
    const { p, sleeper } = await slowProject('always');
    const cli = startCli(['run', '--config', p.configPath]);
    await until(() => running(sleeper), cli.output);
    cli.child.kill('SIGINT');
    // Cancelling takes SSH round trips (kill remote commands, release locks): the second signal lands in them.
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    cli.child.kill('SIGTERM');
    const code = await cli.closed;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(code).toBe(143);
    expect(cli.output()).toContain('SIGINT: stopping');
    expect(cli.output()).toContain('SIGTERM again: exiting now');
    // What the first signal had not killed yet keeps running up to its remote time limit (`timeout` on the host,
    // deploy timeout + 60 s here): end this test's own sleeper by pid rather than wait.
    for (const pid of pids(sleeper)) process.kill(pid, 'SIGTERM');
  });
});
