// `npm test`: the whole test suite. First the unit and integration tests (jest.config.cjs, in parallel), then the
// fault matrix (jest.faults.config.cjs, one cell at a time: its cells time faults against the CLI's progress, and
// other tests on the same cores would skew them). Arguments go to both runs (`npm test -- --ci`); naming test
// files runs only the suites they belong to. Ends with one line adding both up.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const jest = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const args = process.argv.slice(2);
const isPath = (a) => !a.startsWith('-') && /\.(test|faults)\.ts$|^test\//.test(a);
const paths = args.filter(isPath);
const suites = [
  { name: 'unit + integration', config: 'jest.config.cjs', owns: (p) => !/faults/.test(p) },
  { name: 'fault matrix', config: 'jest.faults.config.cjs', owns: (p) => /faults/.test(p) },
].filter((s) => paths.length === 0 || paths.some(s.owns));

const totals = { passed: 0, failed: 0, skipped: 0 };
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-test-'));
let rc = 0;
for (const s of suites) {
  const own = args.filter((a) => !isPath(a) || s.owns(a));
  const results = path.join(out, `${path.basename(s.config, '.cjs')}.json`);
  process.stderr.write(`\n== ${s.name} (${s.config})\n`);
  const r = spawnSync(process.execPath, [jest, '-c', s.config, '--json', `--outputFile=${results}`, ...own], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.status !== 0) rc = r.status ?? 1;
  try {
    const j = JSON.parse(fs.readFileSync(results, 'utf8'));
    totals.passed += j.numPassedTests;
    totals.failed += j.numFailedTests;
    totals.skipped += j.numPendingTests + (j.numTodoTests ?? 0);
  } catch {
    // No results: jest could not start (a config error it printed); the exit code says it failed.
    totals.failed += 1;
  }
}
fs.rmSync(out, { recursive: true, force: true });
process.stderr.write(
  `\nTests:       ${totals.failed} failed, ${totals.skipped} skipped, ${totals.passed} passed (all suites)\n`,
);
process.exit(rc);
