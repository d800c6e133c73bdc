import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { COMMANDS } from '../../src/cli/commands';
import { MINIMAL, writeConfig } from '../fixtures/config';
import { DIST_DIR } from '../helpers/action-runner';

// dist/cli/index.js keeps V8's compiled code of the CLI bundle in the user's cache folder. These runs start the
// committed CLI as a user would and look at what it leaves there: a cache only this user can write, used by the
// next run, replaced when it is broken, never read from a folder others can write, and none at all when off.
const cli = path.join(DIST_DIR, 'cli', 'index.js');
const config = writeConfig(MINIMAL);

function validate(cacheHome: string, extra: NodeJS.ProcessEnv = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheHome };
  delete env.HOMELAB_DEPLOY_COMPILE_CACHE;
  Object.assign(env, extra);
  const r = spawnSync(process.execPath, [cli, 'validate', '--config', config], {
    encoding: 'utf8',
    env,
    timeout: 60_000,
  });
  expect(r.stderr).toBe('');
  expect(r.stdout).toMatch(/valid \(3 hosts/);
  expect(r.status).toBe(0);
  return r;
}

const freshHome = () => fs.mkdtempSync(path.join(os.tmpdir(), 'hd-cache-'));
const cacheFiles = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);
const mode = (p: string) => fs.statSync(p).mode & 0o777;

describe('the CLI code cache', () => {
  it('is written on the first run (folder 0700, file 0600), then used as it is by the next run', () => {
    const home = freshHome();
    const dir = path.join(home, 'homelab-deploy');
    validate(home);
    const files = cacheFiles(dir);
    expect(files).toEqual([
      expect.stringMatching(new RegExp(`^cli-${process.version}-${process.arch}-\\d+-\\d+-validate\\.v8$`)),
    ]);
    const file = path.join(dir, files[0]!);
    expect(mode(dir)).toBe(0o700);
    expect(mode(file)).toBe(0o600);
    expect(fs.statSync(file).size).toBeGreaterThan(10_000);
    // V8 accepted the cache: the launcher rewrites it only when V8 rejects it, so the file is the same one.
    const before = fs.statSync(file);
    validate(home);
    const after = fs.statSync(file);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(cacheFiles(dir)).toEqual(files);
  });

  it('keeps one cache per command, so the first command run does not decide what the others find', () => {
    const home = freshHome();
    const dir = path.join(home, 'homelab-deploy');
    const words = [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]!))];
    for (const word of words) {
      const r = spawnSync(process.execPath, [cli, word, '--help'], {
        encoding: 'utf8',
        env: { ...process.env, XDG_CACHE_HOME: home },
        timeout: 60_000,
      });
      expect([word, r.status]).toEqual([word, 0]);
    }
    spawnSync(process.execPath, [cli, 'valdate'], { env: { ...process.env, XDG_CACHE_HOME: home } });
    spawnSync(process.execPath, [cli, '--help'], { env: { ...process.env, XDG_CACHE_HOME: home } });
    const kinds = cacheFiles(dir).map((f) => /-([a-z_-]+)\.v8$/.exec(f)?.[1]);
    expect(kinds.sort()).toEqual([...words, 'other'].sort());
  });

  it('replaces a broken cache and drops the caches of other bundles', () => {
    const home = freshHome();
    const dir = path.join(home, 'homelab-deploy');
    validate(home);
    const [name] = cacheFiles(dir);
    const file = path.join(dir, name!);
    fs.writeFileSync(file, 'not a V8 code cache', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'cli-v18.0.0-x64-1-1.v8'), 'an older bundle', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not ours to delete', { mode: 0o600 });
    validate(home);
    expect(cacheFiles(dir)).toEqual([name, 'notes.txt']);
    const planCache = path.join(dir, name!.replace(/-validate\.v8$/, '-plan.v8'));
    fs.writeFileSync(planCache, 'this bundle, another command', { mode: 0o600 });
    validate(home);
    expect(fs.readFileSync(planCache, 'utf8')).toBe('this bundle, another command');
    expect(fs.readFileSync(file, 'utf8')).not.toBe('not a V8 code cache');
    expect(fs.statSync(file).size).toBeGreaterThan(10_000);
  });

  it('neither reads nor writes a cache in a folder others can write', () => {
    const home = freshHome();
    const dir = path.join(home, 'homelab-deploy');
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o777);
    validate(home);
    expect(cacheFiles(dir)).toEqual([]);
    // A cache planted there (mode 0666) is left as it is, and the run still works.
    fs.writeFileSync(path.join(dir, 'planted'), 'x');
    const ours = freshHome();
    validate(ours);
    const [name] = cacheFiles(path.join(ours, 'homelab-deploy'));
    fs.copyFileSync(path.join(ours, 'homelab-deploy', name!), path.join(dir, name!));
    fs.chmodSync(path.join(dir, name!), 0o666);
    const planted = fs.statSync(path.join(dir, name!));
    validate(home);
    const later = fs.statSync(path.join(dir, name!));
    expect([later.ino, later.mtimeMs, later.mode & 0o777]).toEqual([planted.ino, planted.mtimeMs, 0o666]);
  });

  it('a cache location that cannot be written costs nothing but the compile, and leaves no temp file', () => {
    const home = freshHome();
    // XDG_CACHE_HOME names a file: the folder cannot be created.
    const notADir = path.join(home, 'file');
    fs.writeFileSync(notADir, '');
    validate(notADir);
    // A read-only cache folder: the write fails at the temp file.
    const ro = path.join(home, 'ro');
    fs.mkdirSync(path.join(ro, 'homelab-deploy'), { recursive: true, mode: 0o700 });
    fs.chmodSync(path.join(ro, 'homelab-deploy'), 0o500);
    validate(ro);
    const left = cacheFiles(path.join(ro, 'homelab-deploy'));
    // root can write a 0500 folder, so either nothing was written or a whole cache was.
    expect(left.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(left.length).toBeLessThanOrEqual(1);
  });

  it('HOMELAB_DEPLOY_COMPILE_CACHE=off writes nothing', () => {
    const home = freshHome();
    validate(home, { HOMELAB_DEPLOY_COMPILE_CACHE: 'off' });
    expect(fs.existsSync(path.join(home, 'homelab-deploy'))).toBe(false);
  });

  it('passes the exit status and stderr of a failing command through', () => {
    const home = freshHome();
    const r = spawnSync(process.execPath, [cli, 'plan', '--config', config, '--phase', 'prod'], {
      encoding: 'utf8',
      env: { ...process.env, XDG_CACHE_HOME: home },
      timeout: 60_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('phase "prod" is not a phase of this config');
    expect(cacheFiles(path.join(home, 'homelab-deploy'))).toHaveLength(1);
  });
});
