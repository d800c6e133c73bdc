import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MINIMAL, writeConfig } from '../fixtures/config';

/**
 * The completion scripts as a shell loads them: the CLI is bundled (as `npm run build` does, into a temp dir),
 * put on PATH as `homelab-deploy`, and bash runs the generated function the way readline would. The scripts call
 * back into that CLI for phase and host names from the config.
 */
const root = path.join(__dirname, '..', '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-completion-'));
const bin = path.join(work, 'bin');
const env = () => ({ ...process.env, PATH: `${bin}:${process.env.PATH}` });
const config = writeConfig(MINIMAL);

beforeAll(() => {
  // scripts/build.cjs, not ncc's CLI: the sources are ES modules and the bundle must be CommonJS, as dist/ is.
  execFileSync(
    process.execPath,
    [path.join(root, 'scripts/build.cjs'), '--entry', 'src/cli/index.ts', '--out', work],
    { cwd: root, stdio: 'inherit' },
  );
  fs.mkdirSync(bin);
  fs.writeFileSync(
    path.join(bin, 'homelab-deploy'),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(work, 'cli', 'index.js'))} "$@"\n`,
    { mode: 0o755 },
  );
}, 180_000);

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const sh = (shell: string, args: string[]) =>
  spawnSync(shell, args, { encoding: 'utf8', env: env(), timeout: 30_000 });

/** What bash offers for the command line `words` (the last word is the one being completed). */
function complete(...words: string[]): string[] {
  const quoted = ['homelab-deploy', ...words].map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = sh('bash', [
    '-c',
    `source <(homelab-deploy completion bash) || exit 9
COMP_WORDS=(${quoted}); COMP_CWORD=${words.length}
_homelab_deploy
printf '%s\\n' "\${COMPREPLY[@]}"`,
  ]);
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  return r.stdout.split('\n').filter(Boolean);
}

describe('bash completion', () => {
  it('loads: `complete -p homelab-deploy` names the function', () => {
    const r = sh('bash', ['-c', 'source <(homelab-deploy completion bash); complete -p homelab-deploy']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('complete -F _homelab_deploy homelab-deploy\n');
  });

  it('completes commands and lock subcommands', () => {
    expect(complete('ru')).toEqual(['run']);
    expect(complete('')).toEqual([
      'run',
      'plan',
      'validate',
      'rollback',
      'releases',
      'status',
      'lock',
      'history',
      'report',
      'merge-reports',
      'completion',
      'help',
    ]);
    expect(complete('rel')).toEqual(['releases']);
    expect(complete('lock', '')).toEqual(['status', 'release']);
    expect(complete('completion', '')).toEqual(['bash', 'zsh']);
  });

  it('offers only the options of the command being typed', () => {
    expect(complete('plan', '--sh')).toEqual(['--shards']);
    expect(complete('run', '--sh')).toEqual([]);
    expect(complete('lock', 'release', '--')).toEqual([
      '--targets',
      '--all',
      '--force',
      '--actor',
      '--config',
      '--json',
      '--help',
    ]);
    expect(complete('lock', '--')).toEqual(['--config', '--targets', '--json', '--help']);
    expect(complete('rollback', '--')).toEqual([
      '--to',
      '--config',
      '--targets',
      '--yes',
      '--json',
      '--report-file',
      '--actor',
      '--help',
    ]);
    expect(complete('run', '--skip')).toEqual(['--skip-tests', '--skip-tests=force']);
    expect(complete('run', '--no')).toEqual(['--no-rollback']);
    expect(complete('history', '--h')).toEqual(['--html', '--help']);
    expect(complete('report', '--')).toEqual(['--html', '--help']);
  });

  it('completes phase and host names from the --config on the line, after commas too', () => {
    expect(complete('run', '--config', config, '--phase', 'p')).toEqual([
      'preflight',
      'production',
      'public',
    ]);
    expect(complete('run', '-c', config, '-p', 'preflight,sta')).toEqual(['preflight,staging']);
    expect(complete('plan', `--config=${config}`, '--targets', 'rt')).toEqual(['rtx1080']);
    expect(complete('status', '--config', config, '--targets', 'thinkpad,')).toEqual([
      'thinkpad,thinkpad',
      'thinkpad,rtx1080',
      'thinkpad,vps',
    ]);
  });

  it('completes rollback and releases targets from the config, and report and --html paths as files', () => {
    expect(complete('rollback', '--config', config, '--targets', 'v')).toEqual(['vps']);
    expect(complete('releases', '-c', config, '-t', 'thinkpad,r')).toEqual(['thinkpad,rtx1080']);
    const dir = fs.mkdtempSync(path.join(work, 'files-'));
    fs.writeFileSync(path.join(dir, 'report-1.json'), '{}');
    expect(complete('report', path.join(dir, 'rep'))).toEqual([path.join(dir, 'report-1.json')]);
    expect(complete('history', '--html', path.join(dir, 'rep'))).toEqual([path.join(dir, 'report-1.json')]);
    // --to takes a version: nothing to complete from files.
    expect(complete('rollback', '--to', '')).toEqual([]);
  });

  it('a config that cannot be read offers nothing and prints nothing', () => {
    expect(complete('run', '--config', path.join(work, 'missing.yml'), '--phase', '')).toEqual([]);
  });
});

describe('zsh completion', () => {
  const hasZsh = fs.existsSync('/usr/bin/zsh') || fs.existsSync('/bin/zsh');
  (hasZsh ? it : it.skip)('parses, and registers _homelab_deploy for homelab-deploy with compinit', () => {
    const file = path.join(work, '_homelab-deploy');
    fs.writeFileSync(
      file,
      execFileSync('homelab-deploy', ['completion', 'zsh'], { env: env(), encoding: 'utf8' }),
    );
    expect(sh('zsh', ['-n', file])).toMatchObject({ status: 0, stderr: '' });
    const r = sh('zsh', [
      '-fc',
      `autoload -Uz compinit && compinit -u -D && source ${file} && print -r -- "\${_comps[homelab-deploy]}"`,
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('_homelab_deploy\n');
  });
});
