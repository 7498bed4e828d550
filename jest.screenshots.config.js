// Only for `npm run screenshots` (not part of npm test).
const base = require('./jest.config.js');
module.exports = { ...base, testMatch: ['<rootDir>/scripts/screenshots/*.test.ts'] };
