#!/usr/bin/env node
// Builds what `npm pack` ships (run by `prepack`): the plugin and the server as `npm run build`
// does, and the SDK, hosts and kit compiled by tsc to dist/lib with their declarations.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

/** dist/lib: compiled JavaScript and .d.ts of src/, what the package's entry points name. */
function compileLib() {
  fs.rmSync(path.join(root, 'dist/lib'), { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.package.json')],
    { stdio: 'inherit', cwd: root },
  );
}

module.exports = { compileLib };
if (require.main === module) {
  require('./build.js').main();
  compileLib();
  console.log('package: dist/lib compiled');
}
