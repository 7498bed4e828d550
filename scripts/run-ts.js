#!/usr/bin/env node
// Runs a TypeScript script of this repository: bundles it with esbuild (packages stay external).
const { buildSync } = require('esbuild');
const path = require('node:path');
const [entry, ...args] = process.argv.slice(2);
const outfile = path.join(
  __dirname,
  '../dist/scripts',
  path.basename(entry).replace(/\.ts$/, '.js'),
);
buildSync({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  logLevel: 'warning',
});
process.argv = [process.argv[0], outfile, ...args];
require(outfile);
