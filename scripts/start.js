#!/usr/bin/env node
// `npm start`: builds what needs building, then runs cardpay-platform with its defaults.
const { spawn } = require('node:child_process');
const path = require('node:path');

require('child_process').execFileSync(process.execPath, [path.join(__dirname, 'build.js')], {
  stdio: 'inherit',
});
const child = spawn(
  process.execPath,
  [path.join(__dirname, '../packages/platform/bin/cardpay-platform.js'), ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
// `npm start` runs this under a shell, and a SIGTERM to npm ends that shell without passing the
// signal on: when the process that started this one is gone, the platform is stopped as if it had
// been signalled (it finishes what is in flight and exits).
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) child.kill('SIGTERM');
}, 250).unref();
