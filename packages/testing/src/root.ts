import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The built plugin the kit loads in miniprogram-simulate: shipped beside the kit when a merchant
 * installed `cardpay-testing` (`node_modules/cardpay-testing/plugin`), or the repository's
 * `dist/plugin` when the kit runs from this repository.
 */
export function pluginRoot(): string {
  const shipped = join(__dirname, '../plugin');
  if (existsSync(join(shipped, 'plugin.json'))) return shipped;
  for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'project.config.json')) && existsSync(join(dir, 'packages')))
      return join(dir, 'dist/plugin');
  }
  return shipped;
}

/** The `cardpay-platform` command of the installed platform package. */
export function platformBin(): string {
  const resolve = createRequire(__filename).resolve;
  return join(dirname(resolve('cardpay-platform/package.json')), 'bin/cardpay-platform.js');
}
