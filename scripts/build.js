#!/usr/bin/env node
// Builds what `npm start`, the tests and WeChat DevTools need: the three packages' JavaScript
// (packages/*/dist) and, once it exists, the plugin and demo (dist/plugin, dist/demo). Fast:
// esbuild only, one file at a time (declarations are made when a package is packed).
const { buildSync } = require('esbuild');
const path = require('node:path');
const fs = require('node:fs');

const root = path.join(__dirname, '..');
const PACKAGES = ['sdk', 'platform', 'testing'];

function sources(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => path.join(e.parentPath ?? e.path, e.name));
}

/** packages/<name>/src/**.ts → packages/<name>/dist/**.js, CommonJS for Node 20. */
function buildPackages() {
  for (const name of PACKAGES) {
    const src = path.join(root, 'packages', name, 'src');
    buildSync({
      entryPoints: sources(src),
      outdir: path.join(root, 'packages', name, 'dist'),
      outbase: src,
      bundle: false,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      sourcemap: true,
      logLevel: 'warning',
    });
  }
}

function main() {
  const started = Date.now();
  buildPackages();
  const extra = path.join(__dirname, 'build-plugin.js');
  if (fs.existsSync(extra)) require(extra).buildPlugin(root);
  console.log(`built in ${Date.now() - started} ms`);
}

module.exports = { buildPackages, main };
if (require.main === module) main();
