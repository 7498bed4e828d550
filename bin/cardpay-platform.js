#!/usr/bin/env node
// The `cardpay-platform` command. Runs the built server; builds it first in a fresh checkout.
const path = require('node:path');
const fs = require('node:fs');

const cli = path.join(__dirname, '../dist/server/cli.js');
if (!fs.existsSync(cli)) {
  try {
    require('../scripts/build.js').buildServer();
  } catch (error) {
    process.stderr.write(
      `cardpay-platform: the server is not built and building it failed (${error.message}); run npm install, then npm run build\n`,
    );
    process.exit(2);
  }
}
require(cli).main(process.argv.slice(2));
