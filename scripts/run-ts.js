#!/usr/bin/env node
// Runs a TypeScript script of this repository: bundles it with esbuild (packages stay external).
const { buildSync } = require('esbuild');
const path = require('node:path');
const [entry, ...args] = process.argv.slice(2);
// The packages a script imports by name (cardpay, cardpay-platform, …) run from their built
// JavaScript: brought up to date first (esbuild, well under a second).
require('./build.js').buildPackages();
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
