/**
 * The fault matrix (`npm run test:faults`): real network-namespace hosts, faults injected while the CLI runs as a
 * separate process. One cell at a time: cells time faults against the CLI's progress, and a second cell on the
 * same two cores would skew them. Needs root (namespaces, iptables); see test/faults/README.md.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/faults'],
  testMatch: ['**/*.faults.ts'],
  transform: {
    '^.+\\.ts$': [
      'ts-jest',
      {
        tsconfig: { module: 'commonjs', moduleResolution: 'node10', isolatedModules: true },
        diagnostics: false,
      },
    ],
  },
  globalSetup: '<rootDir>/test/faults/global-setup.ts',
  globalTeardown: '<rootDir>/test/faults/global-teardown.ts',
  testTimeout: 300000,
  maxWorkers: 1,
  verbose: true,
};
