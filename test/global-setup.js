// Builds what the tests run as shipped, once, before any test: the platform CLI (run as a process)
// and the plugin (loaded by the component tests from dist/plugin). esbuild cannot run inside
// jest's jsdom environment, so the component tests cannot build it themselves.
module.exports = () => {
  require('../scripts/build.js').buildServer();
  require('../scripts/build-plugin.js').buildPlugin(require('node:path').join(__dirname, '..'));
};
