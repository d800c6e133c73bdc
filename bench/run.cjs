// `npm run bench`: transpiles the benchmark's TypeScript (bench/**/*.ts) into node_modules/.cache, where
// `require('ssh2')` still resolves to the project's copy, then runs it. Transpiling up front, not through a
// require hook, keeps the TypeScript compiler out of the processes being measured (the ssh2 baseline is
// started from the transpiled files).
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const root = path.resolve(__dirname, '..');
const cache = path.join(root, 'node_modules', '.cache', 'homelab-deploy-bench');
// One folder per bench process, so two benchmarks started at once never rewrite each other's files.
const out = path.join(cache, String(process.pid));

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

function sources(dir) {
  const found = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'results' && !e.name.startsWith('.')) found.push(...sources(p));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) found.push(p);
  }
  return found;
}

fs.mkdirSync(cache, { recursive: true });
for (const name of fs.readdirSync(cache)) {
  if (!/^\d+$/.test(name) || !alive(Number(name)) || Number(name) === process.pid)
    fs.rmSync(path.join(cache, name), { recursive: true, force: true });
}
process.on('exit', () => fs.rmSync(out, { recursive: true, force: true }));
for (const file of sources(__dirname)) {
  const result = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
    fileName: file,
    reportDiagnostics: true,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
      inlineSourceMap: true,
      inlineSources: true,
    },
  });
  const errors = (result.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length) {
    for (const d of errors) console.error(`${file}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    process.exit(2);
  }
  const target = path.join(out, path.relative(__dirname, file)).replace(/\.ts$/, '.js');
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, result.outputText);
}

process.setSourceMapsEnabled(true);
require(path.join(out, 'main.js'))
  .main(process.argv.slice(2), { root })
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exitCode = 1;
    },
  );
