/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  // `ts` must come before `json`: miniprogram-simulate otherwise resolves a component's index.json.
  moduleFileExtensions: ['ts', 'js', 'json', 'wxml', 'wxss'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testTimeout: 20000,
  globalSetup: '<rootDir>/test/global-setup.js',
  globalTeardown: '<rootDir>/test/global-teardown.js',
};
