#!/usr/bin/env node
// The `cardpay-platform` command. Runs the built platform; in a fresh checkout of the repository
// it builds the packages first.
const path = require('node:path');
const fs = require('node:fs');

const cli = path.join(__dirname, '../dist/cli.js');
if (!fs.existsSync(cli)) {
  const build = path.join(__dirname, '../../../scripts/build.js');
  try {
    if (!fs.existsSync(build)) throw new Error(`${cli} is missing from the package`);
    require(build).buildPackages();
  } catch (error) {
    process.stderr.write(
      `cardpay-platform: the platform is not built and building it failed (${error.message}); run npm install, then npm run build\n`,
    );
    process.exit(2);
  }
}
require(cli).main(process.argv.slice(2));
