import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

/**
 * The built plugin the kit loads in miniprogram-simulate: shipped beside the kit when a merchant
 * installed `cardpay-testing` (`node_modules/cardpay-testing/plugin`), or the repository's
 * `dist/plugin` when the kit runs from this repository.
 */
export function pluginRoot(): string {
  // Inside this repository (the kit's own files under <root>/packages/testing), the plugin just
  // built: a copy shipped beside the kit by an earlier pack may be older.
  const kit = resolve(__dirname, '..');
  const root = resolve(kit, '../..');
  if (kit === join(root, 'packages', 'testing') && existsSync(join(root, 'project.config.json')))
    return join(root, 'dist/plugin');
  return join(__dirname, '../plugin');
}

/** The `cardpay-platform` command of the installed platform package. */
export function platformBin(): string {
  const resolve = createRequire(__filename).resolve;
  return join(dirname(resolve('cardpay-platform/package.json')), 'bin/cardpay-platform.js');
}
