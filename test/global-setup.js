// Builds the platform CLI once before the tests that run it as a process (esbuild cannot run
// inside jest's jsdom environment, so component tests cannot build it themselves).
module.exports = () => require('../scripts/build.js').buildServer();
