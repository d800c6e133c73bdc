// Bundles the action, the CLI and the demo with ncc into dist/ (committed; CI fails when it is stale).
//
//   node scripts/build.cjs                       all three bundles into dist/
//   node scripts/build.cjs --out DIR             the same layout under DIR (index.js, cli/index.js, demo/index.js),
//                                                e.g. to test the current sources without touching dist/
//   node scripts/build.cjs --out DIR --entry src/cli/index.ts   only the named bundle(s)
//
// The sources are ES modules (package.json "type": "module"), but the bundles are CommonJS: ssh2 reads __dirname
// when it loads, which an ES-module bundle does not have. ncc's CLI picks ES-module output from the package type
// and has no flag against it, so its API is called with `esm: false`, and a package.json saying "commonjs" goes
// next to the bundles, where Node looks to decide how to load them.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const BUNDLES = [
  { entry: 'src/index.ts', dir: '.' },
  { entry: 'src/cli/index.ts', dir: 'cli', bin: true },
  { entry: 'demo/main.ts', dir: 'demo' },
];

function parseArgs(argv) {
  const opts = { out: path.join(root, 'dist'), entries: [] };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if ((argv[i] === '--out' || argv[i] === '--entry') && (value === undefined || value.startsWith('--')))
      throw new Error(`scripts/build.cjs: ${argv[i]} needs a value`);
    if (argv[i] === '--out') opts.out = path.resolve(argv[++i]);
    else if (argv[i] === '--entry') opts.entries.push(path.normalize(argv[++i]));
    else
      throw new Error(
        `scripts/build.cjs: unknown argument ${JSON.stringify(argv[i])}; expected --out DIR or --entry FILE`,
      );
  }
  const known = BUNDLES.map((b) => b.entry);
  for (const e of opts.entries)
    if (!known.includes(e))
      throw new Error(
        `scripts/build.cjs: --entry ${JSON.stringify(e)} is not a bundle; expected one of ${known.join(', ')}`,
      );
  return opts;
}

/** The folders of the packages whose code webpack put into the bundle (concatenated modules included). */
function bundledPackages(compilation) {
  const dirs = new Set();
  const walk = (m) => {
    const where = m.resource && /^(.*[\\/]node_modules[\\/](?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(m.resource);
    if (where) dirs.add(where[1]);
    for (const inner of m.modules ?? []) walk(inner);
  };
  for (const m of compilation.modules) walk(m);
  return [...dirs];
}

/**
 * licenses.txt for the bundle and its chunks: each bundled package's name, license and license text, by name.
 * ncc's own list misses the packages of the entry chunk once the bundle has chunks, so it is written here.
 */
function renderLicenses(dirs) {
  const entries = new Map();
  for (const dir of dirs) {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    const id =
      typeof manifest.license === 'string'
        ? manifest.license
        : (manifest.license?.type ?? manifest.licenses?.[0]?.type ?? '');
    const file = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f));
    const text = file ? fs.readFileSync(path.join(dir, file), 'utf8').trim() : '';
    entries.set(manifest.name, [manifest.name, id, text].filter(Boolean).join('\n'));
  }
  const names = [...entries.keys()].sort();
  return names.map((n) => entries.get(n)).join('\n\n') + '\n';
}

/**
 * The CommonJS bundle of `entry`: index.js, its chunks and licenses.txt, written into `outDir`. A command's bundle
 * (`bin`) is bundle.js, started by scripts/cli-launcher.cjs as index.js (it adds V8's code cache).
 */
async function bundle(entry, outDir, bin) {
  const filename = bin ? 'bundle.js' : 'index.js';
  const ncc = require(path.join(root, 'node_modules', '@vercel', 'ncc'));
  const { code, map, assets, symlinks, stats } = await ncc(path.join(root, entry), {
    esm: false,
    filename,
    target: 'es2022',
    transpileOnly: true,
    license: 'licenses.txt',
    quiet: true,
  });
  assets['licenses.txt'] = { source: renderLicenses(bundledPackages(stats.compilation)), permissions: 0o644 };
  fs.mkdirSync(outDir, { recursive: true });
  // As ncc's CLI does: an executable when the code starts with a shebang.
  fs.writeFileSync(path.join(outDir, filename), code, {
    mode: /^#![^\n\r]*[\r\n]/.test(code) ? 0o777 : 0o666,
  });
  if (map) fs.writeFileSync(path.join(outDir, `${filename}.map`), map);
  if (bin) fs.copyFileSync(path.join(__dirname, 'cli-launcher.cjs'), path.join(outDir, 'index.js'));
  for (const [name, asset] of Object.entries(assets)) {
    const file = path.join(outDir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, asset.source, { mode: asset.permissions });
  }
  for (const [name, target] of Object.entries(symlinks)) fs.symlinkSync(target, path.join(outDir, name));
}

const MARKER =
  'The bundles are CommonJS; the sources they are built from are ES modules (see scripts/build.cjs).';

/** A full build replaces its output folder: only dist/, an empty or missing folder, or an earlier build's. */
function refuseForeign(out) {
  if (out === path.join(root, 'dist') || !fs.existsSync(out) || !fs.readdirSync(out).length) return;
  let marker;
  try {
    marker = JSON.parse(fs.readFileSync(path.join(out, 'package.json'), 'utf8'))['//'];
  } catch {
    marker = undefined;
  }
  if (marker !== MARKER)
    throw new Error(
      `scripts/build.cjs: --out ${out} is not empty and holds no earlier build; name a new folder`,
    );
}

// pagent.exe (Windows agent helper) and any native addon are not used on Linux runners.
function prune(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) prune(p);
    else if (/\.(node|exe)$/.test(e.name)) fs.rmSync(p);
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const selected = opts.entries.length ? BUNDLES.filter((b) => opts.entries.includes(b.entry)) : BUNDLES;

  // ssh2 and cpu-features ship optional native addons; when a machine has built them, ncc would copy the
  // machine-specific .node files into dist and change the bundle. Bundles must be the same on every machine,
  // and ssh2 runs on its pure-JS fallback, so the builds are removed before bundling.
  for (const dir of ['node_modules/ssh2/lib/protocol/crypto/build', 'node_modules/cpu-features/build']) {
    fs.rmSync(path.join(root, dir), { recursive: true, force: true });
  }
  if (selected.length === BUNDLES.length) {
    refuseForeign(opts.out);
    fs.rmSync(opts.out, { recursive: true, force: true });
  } else
    for (const b of selected) {
      // The bundle and its chunks (`<id>.index.js` or `<id>.bundle.js`, the code it loads on first use): a chunk of an earlier build
      // must not be left beside a bundle that no longer loads it.
      const dir = path.join(opts.out, b.dir);
      const old = fs.existsSync(dir)
        ? fs.readdirSync(dir).filter((f) => /^(\d+\.)?(index|bundle)\.js$/.test(f))
        : [];
      for (const f of old) fs.rmSync(path.join(dir, f), { force: true });
    }

  if (selected.some((b) => b.entry === 'demo/main.ts'))
    execFileSync(process.execPath, [path.join(root, 'demo/make-stack.cjs')]);
  for (const b of selected) await bundle(b.entry, path.join(opts.out, b.dir), b.bin === true);
  fs.writeFileSync(
    path.join(opts.out, 'package.json'),
    JSON.stringify(
      {
        '//': MARKER,
        type: 'commonjs',
      },
      null,
      2,
    ) + '\n',
  );
  prune(opts.out);
  for (const b of selected.filter((s) => s.bin)) {
    const file = path.join(opts.out, b.dir, 'index.js');
    const text = fs.readFileSync(file, 'utf8');
    if (!text.startsWith('#!')) fs.writeFileSync(file, '#!/usr/bin/env node\n' + text);
    fs.chmodSync(file, 0o755);
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
