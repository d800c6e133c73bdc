#!/usr/bin/env node
// dist/cli/index.js: starts the CLI's bundle (bundle.js beside it) with V8's code cache. Compiling the bundle is
// a large part of a short command's time (`validate`, `plan`, `--help`); the cache holds the compiled code of
// the functions an earlier run used, so a later run skips that work. Node 22 does the same with
// module.enableCompileCache(); this works on Node 20 as well.
//
// The cache lives in $XDG_CACHE_HOME/homelab-deploy (else ~/.cache/homelab-deploy), a folder only this user can
// write, never a shared temp folder: compiled code is trusted input. It is written once per bundle and Node
// version (temp file + rename, so a concurrent run never reads half a file), and never when
// HOMELAB_DEPLOY_COMPILE_CACHE=off. V8 checks the cache against the source and its own version and flags; a
// cache it rejects is replaced. Any problem with the cache only costs the compile, never the command.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

const bundle = path.join(__dirname, 'bundle.js');
// The CLI's commands (src/cli/commands; `__complete` runs on every Tab); anything else (a typo, --help) shares one
// cache.
const COMMANDS = new Set([
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
  '__complete',
]);

function cacheDir(env) {
  if (env.HOMELAB_DEPLOY_COMPILE_CACHE === 'off') return undefined;
  const base = env.XDG_CACHE_HOME || (os.homedir() ? path.join(os.homedir(), '.cache') : '');
  return path.isAbsolute(base) ? path.join(base, 'homelab-deploy') : undefined;
}

/** Ours and writable by no one else: a file or folder anyone else could have written is never loaded as code. */
function trusted(st) {
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  return st.uid === uid && (st.mode & 0o022) === 0;
}

/** The cache folder, created 0700 when missing; false when it is not ours alone. */
function ownFolder(dir) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  return st.isDirectory() && trusted(st);
}

function readCache(dir, file) {
  try {
    if (!trusted(fs.statSync(dir))) return undefined;
    const fd = fs.openSync(file, 'r');
    try {
      const st = fs.fstatSync(fd);
      return st.isFile() && trusted(st) ? fs.readFileSync(fd) : undefined;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

function start() {
  const source = fs.readFileSync(bundle, 'utf8');
  const stat = fs.statSync(bundle);
  const dir = cacheDir(process.env);
  // One cache per bundle (size and time of the file) and Node build, and one per command: a cache holds the
  // functions its first run compiled, so `--help` first would otherwise leave `validate` a cache without its code.
  const bundleId = `cli-${process.version}-${process.arch}-${stat.size}-${Math.trunc(stat.mtimeMs)}`;
  const command = COMMANDS.has(process.argv[2]) ? process.argv[2] : 'other';
  const file = dir && path.join(dir, `${bundleId}-${command}.v8`);
  const cached = file ? readCache(dir, file) : undefined;
  const script = new vm.Script(Module.wrap(source.replace(/^#!.*/, '')), {
    filename: bundle,
    cachedData: cached,
  });
  if (file && (!cached || script.cachedDataRejected))
    process.once('exit', () => writeCache(dir, file, bundleId, script));

  const mod = new Module(bundle, module);
  mod.filename = bundle;
  mod.paths = Module._nodeModulePaths(__dirname);
  const req = (id) => mod.require(id);
  req.resolve = (request) => Module._resolveFilename(request, mod);
  req.main = require.main;
  req.cache = require.cache;
  script.runInThisContext().call(mod.exports, mod.exports, req, mod, bundle, __dirname);
}

function writeCache(dir, file, bundleId, script) {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    if (!ownFolder(dir)) return;
    fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
    fs.renameSync(tmp, file);
    // Caches of other bundles or Node versions are of no further use.
    for (const f of fs.readdirSync(dir))
      if (/^cli-.*\.v8$/.test(f) && !f.startsWith(`${bundleId}-`))
        fs.rmSync(path.join(dir, f), { force: true });
  } catch {
    // A read-only or full home folder: the next run compiles again, and no partial file stays behind.
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // The folder itself is unusable (XDG_CACHE_HOME names a file, say): there is no temp file to remove.
    }
  }
}

start();
