// Builds what the tests run as shipped, once, before any test: the platform CLI (run as a process)
// and the plugin (loaded by the component tests from dist/plugin). esbuild cannot run inside
// jest's jsdom environment, so the component tests cannot build it themselves.
//
// Every temporary folder of the run (the tests', and those of the processes they start) goes in
// one folder of its own, removed by the teardown: a run leaves nothing in the system's /tmp.
const { mkdtempSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

module.exports = () => {
  process.env.CARDPAY_TEST_TMP = mkdtempSync(join(tmpdir(), 'cardpay-test-run-'));
  process.env.TMPDIR = process.env.CARDPAY_TEST_TMP;
  require('../scripts/build.js').buildPackages();
  require('../scripts/build-plugin.js').buildPlugin(join(__dirname, '..'));
};
