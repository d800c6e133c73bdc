// Fails when src/ has an import cycle or a lower layer imports a higher one. Layers, lowest first: a module may
// import its own layer and any layer below it, never one above. Type-only imports count too: they still couple.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', 'src');
const LAYERS = [
  ['util', 'errors.ts'],
  [
    'report/types.ts',
    'config',
    'release/config.ts',
    'release/types.ts',
    'release/names.ts',
    'release/tag-templates.ts',
  ],
  ['secrets', 'git', 'remote'],
  ['run'],
  ['health', 'snapshot'],
  ['targets', 'release'],
  ['plan'],
  ['pipeline'],
  ['report', 'notify', 'metrics', 'history', 'github'],
  ['observe.ts', 'engine.ts'],
  ['action', 'cli', 'index.ts'],
];
/** Known exceptions, each with its reason. */
const ALLOWED = new Map([
  // Credential variable names are shared by the resolver's notes and the credential loader.
  ['config -> remote/fallback.ts', 'names of environment variables, no code'],
]);

function files(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p) : /\.ts$/.test(e.name) ? [p] : [];
  });
}
const rel = (p) => path.relative(root, p).split(path.sep).join('/');
function layerOf(file) {
  for (let i = 0; i < LAYERS.length; i++)
    for (const unit of LAYERS[i])
      if (file === unit || file.startsWith(unit.replace(/\.ts$/, '') + '/')) return [i, unit];
  throw new Error(`${file}: in no layer of scripts/check-imports.cjs`);
}
function resolve(from, spec) {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base + '.ts', path.join(base, 'index.ts')]) if (fs.existsSync(c)) return c;
  return undefined;
}

const all = files(root);
const graph = new Map();
const problems = [];
for (const f of all) {
  const text = fs.readFileSync(f, 'utf8');
  const deps = [];
  // Static imports and re-exports, and import('...') of a module loaded on first use: both couple the layers.
  for (const m of text.matchAll(/(?:(?:import|export)\s[^'"]*?from\s+|import\(\s*)['"](\.[^'"]+)['"]/g)) {
    const to = resolve(f, m[1]);
    if (!to) continue;
    deps.push(to);
    const [lf, uf] = layerOf(rel(f));
    const [lt, ut] = layerOf(rel(to));
    const key = `${uf} -> ${rel(to)}`;
    if (lt > lf && !ALLOWED.has(key) && !ALLOWED.has(`${uf} -> ${ut}`))
      problems.push(`${rel(f)} imports ${rel(to)}: ${ut} is a higher layer than ${uf}`);
  }
  graph.set(f, deps);
}
// Tarjan's strongly connected components: any component of more than one module is a cycle.
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const on = new Set();
function visit(v) {
  idx.set(v, index);
  low.set(v, index++);
  stack.push(v);
  on.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!idx.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      on.delete(w);
      comp.push(rel(w));
    } while (w !== v);
    if (comp.length > 1) problems.push(`import cycle: ${comp.sort().join(' <-> ')}`);
  }
}
for (const f of all) if (!idx.has(f)) visit(f);
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`imports: ${all.length} modules, no cycle, no lower layer importing a higher one`);
