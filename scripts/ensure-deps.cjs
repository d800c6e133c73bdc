// `npm test` on a fresh clone: install the locked dependencies first if they are missing.
// --ignore-scripts: ssh2's optional native addons are not needed (it falls back to pure JS) and builds differ per machine.
const { existsSync } = require('node:fs');
const { execSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
if (!existsSync(path.join(root, 'node_modules', '.bin', 'jest'))) {
  console.log('homelab-deploy: installing dependencies (npm ci --ignore-scripts)...');
  execSync('npm ci --ignore-scripts --no-audit --no-fund', { cwd: root, stdio: 'inherit' });
}
