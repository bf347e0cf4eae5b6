// Tests run as native ES modules (the sources use import.meta); SWC strips the types.
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  // The app's tests, and each workspace package's own (packages/*/test).
  testMatch: ['<rootDir>/test/**/*.test.ts', '<rootDir>/packages/*/test/**/*.test.ts'],
  // A hang detector, not a time bound: a beforeAll that starts an engine and loads data took over 60 s
  // while the other worker loaded both cores (vector-search, CI rehearsal of 2047a35).
  testTimeout: 120_000,
  // Every test file starts its own embedded engine; two cores, two workers.
  maxWorkers: 2,
};
