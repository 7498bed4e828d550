#!/usr/bin/env node
// Builds what `npm start` and WeChat DevTools need: the platform server (dist/server) and,
// once it exists, the plugin and demo (dist/plugin, dist/demo). Fast: esbuild only.
const { buildSync } = require('esbuild');
const path = require('node:path');
const fs = require('node:fs');

const root = path.join(__dirname, '..');

function buildServer() {
  buildSync({
    entryPoints: [path.join(root, 'src/server/cli.ts')],
    outfile: path.join(root, 'dist/server/cli.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    packages: 'external',
    sourcemap: true,
    logLevel: 'warning',
  });
}

function main() {
  const started = Date.now();
  buildServer();
  const extra = path.join(__dirname, 'build-plugin.js');
  if (fs.existsSync(extra)) require(extra).buildPlugin(root);
  console.log(`built in ${Date.now() - started} ms`);
}

module.exports = { buildServer, main };
if (require.main === module) main();
