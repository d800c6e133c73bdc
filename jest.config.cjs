const fs = require('node:fs');
const path = require('node:path');

/**
 * Tests run the TypeScript sources through ts-jest, compiled to CommonJS. The package is "type": "module", but jest
 * takes a .ts file for an ES module only when extensionsToTreatAsEsm names .ts, which it does not here, so no test
 * needs --experimental-vm-modules. The action itself is exercised through the committed dist/ bundle, and its
 * sources through GitHub's local-action (test/integration/local-action.test.ts).
 *
 * The GitHub client (@actions/github 9, @octokit/*) is published as ES modules only. ncc bundles them for dist/;
 * under jest the ES-module packages it depends on (found by walking its dependencies, so an update that adds one
 * needs no edit here) are compiled to CommonJS like our own sources, and the packages whose `exports` offer only an
 * `import` entry are mapped to that entry, because jest resolves with `require` conditions. Each lookup starts at
 * the package that imports it, as Node's does.
 */
const ESM_ROOTS = ['@actions/github', '@octokit/plugin-retry', '@octokit/plugin-throttling'];

/** The folder of package `name` as Node would find it from `fromDir`. */
function packageDir(name, fromDir) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const pkgDir = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(pkgDir, 'package.json'))) return pkgDir;
    if (path.dirname(dir) === dir) throw new Error(`jest.config.cjs: ${name} is not installed`);
  }
}

const manifestOf = (pkgDir) => JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));

/** Names of the ES-module packages among `roots` and everything they depend on. */
function esmPackages(roots) {
  const names = new Set();
  const seen = new Set();
  const visit = (name, fromDir) => {
    const pkgDir = packageDir(name, fromDir);
    if (seen.has(pkgDir)) return;
    seen.add(pkgDir);
    const manifest = manifestOf(pkgDir);
    if (manifest.type === 'module') names.add(name);
    for (const dep of Object.keys(manifest.dependencies ?? {})) visit(dep, pkgDir);
  };
  for (const root of roots) visit(root, __dirname);
  return [...names].sort();
}

/**
 * Where a package (looked up from `fromDir` upwards, like Node) keeps the `import`-only entry of its export `sub`;
 * undefined when jest can resolve it unaided (a CommonJS package, or one with a `require`/`default` entry).
 */
function importOnlyEntry(name, sub, fromDir) {
  const pkgDir = packageDir(name, fromDir);
  const entry = manifestOf(pkgDir).exports?.[sub];
  if (!entry?.import || entry.require || entry.default) return undefined;
  return { file: path.join(pkgDir, entry.import), pkgDir };
}

const ESM_PACKAGES = esmPackages(ESM_ROOTS).map((name) => name.replace(/[.+]/g, '\\$&'));
const github = importOnlyEntry('@actions/github', '.', __dirname);
const mapped = {
  '^@actions/github$': github,
  '^@actions/github/lib/utils$': importOnlyEntry('@actions/github', './lib/utils', __dirname),
  // @actions/github may pin its own @actions/http-client major: map the copy it would load.
  '^@actions/http-client$': importOnlyEntry('@actions/http-client', '.', github?.pkgDir ?? __dirname),
};

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': [
      'ts-jest',
      {
        tsconfig: { module: 'commonjs', moduleResolution: 'node10', isolatedModules: true },
        diagnostics: false,
      },
    ],
    '^.+\\.js$': [
      'ts-jest',
      {
        tsconfig: { module: 'commonjs', allowJs: true, isolatedModules: true },
        diagnostics: false,
      },
    ],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${ESM_PACKAGES.join('|')})/)`],
  moduleNameMapper: Object.fromEntries(
    Object.entries(mapped)
      .filter(([, entry]) => entry)
      .map(([pattern, entry]) => [pattern, entry.file]),
  ),
  globalSetup: '<rootDir>/test/global-setup.ts',
  testTimeout: 60000,
  maxWorkers: 2,
  verbose: false,
};
