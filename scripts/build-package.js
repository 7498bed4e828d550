#!/usr/bin/env node
// Builds what `npm pack` ships for each package (run by each package's `prepack`): its
// JavaScript (as `npm run build` makes it) and its declarations (tsc), in dependency order, so
// that a package's declarations read the ones it depends on as a merchant would have them
// installed. cardpay-testing also ships the built plugin it loads in miniprogram-simulate.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const ORDER = ['sdk', 'platform', 'testing'];

function declarations(name) {
  execFileSync(
    process.execPath,
    [
      require.resolve('typescript/bin/tsc'),
      '-p',
      path.join(root, 'packages', name, 'tsconfig.json'),
    ],
    { stdio: 'inherit', cwd: root },
  );
}

/** Builds `names` (default: all three) ready to pack. */
/**
 * Builds what packing `names` needs. `plugin: false` ships the plugin already in dist/plugin as it
 * is: the tests' global setup built it, and other tests load it while this runs, so building it
 * again (which empties the folder first) would pull its files from under them.
 */
function buildForPack(names = ORDER, { plugin = true } = {}) {
  const build = require('./build.js');
  build.buildPackages();
  for (const name of ORDER.filter((n) => names.includes(n))) {
    declarations(name);
    if (name === 'testing') {
      if (plugin) build.main(); // the plugin, as DevTools and the kit load it
      const shipped = path.join(root, 'packages/testing/plugin');
      fs.rmSync(shipped, { recursive: true, force: true });
      fs.cpSync(path.join(root, 'dist/plugin'), shipped, { recursive: true });
    }
  }
}

module.exports = { buildForPack };
if (require.main === module) {
  const asked = process.argv.slice(2);
  // Packing one package needs the declarations of those before it.
  const upTo = asked.length ? Math.max(...asked.map((n) => ORDER.indexOf(n))) : ORDER.length - 1;
  buildForPack(ORDER.slice(0, upTo + 1));
  console.log(`packages built: ${ORDER.slice(0, upTo + 1).join(', ')}`);
}
