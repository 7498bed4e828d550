#!/usr/bin/env node
// `npm start`: builds what needs building, then runs cardpay-platform with its defaults.
const { spawn } = require('node:child_process');
const path = require('node:path');

require('child_process').execFileSync(process.execPath, [path.join(__dirname, 'build.js')], {
  stdio: 'inherit',
});
const child = spawn(
  process.execPath,
  [path.join(__dirname, '../bin/cardpay-platform.js'), ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
