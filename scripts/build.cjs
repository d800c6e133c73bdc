// Bundles the action, the CLI and the demo with ncc into dist/ (committed; CI fails when it is stale).
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const ncc = path.join(root, 'node_modules', '.bin', 'ncc');

// ssh2 and cpu-features ship optional native addons; when a machine has built them, ncc would copy the
// machine-specific .node files into dist and change the bundle. Bundles must be the same on every machine,
// and ssh2 runs on its pure-JS fallback, so the builds are removed before bundling.
for (const dir of ['node_modules/ssh2/lib/protocol/crypto/build', 'node_modules/cpu-features/build']) {
  fs.rmSync(path.join(root, dir), { recursive: true, force: true });
}
fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });

execFileSync(process.execPath, [path.join(root, 'demo/make-stack.cjs')]);
const bundles = [
  ['src/index.ts', 'dist'],
  ['src/cli/index.ts', 'dist/cli'],
  ['demo/main.ts', 'dist/demo'],
];
for (const [entry, out] of bundles) {
  execFileSync(
    ncc,
    ['build', entry, '-o', out, '--target', 'es2022', '--transpile-only', '-q', '--license', 'licenses.txt'],
    { cwd: root, stdio: 'inherit' },
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
prune(path.join(root, 'dist'));
const cli = path.join(root, 'dist/cli/index.js');
const text = fs.readFileSync(cli, 'utf8');
if (!text.startsWith('#!')) fs.writeFileSync(cli, '#!/usr/bin/env node\n' + text);
fs.chmodSync(cli, 0o755);
