/** Bundles the platform server into dist/server/cli.js. */
export function buildServer(): void;
