import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The folder of the `cardpay` package: this repository when the kit runs from its sources, or
 * `node_modules/cardpay` when a merchant installed the package (the kit is compiled one folder
 * deeper there). The built plugin and the platform's command live under it.
 */
export function packageRoot(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'cardpay')
          return dir;
      } catch {
        // not ours; keep looking up
      }
    }
    if (dirname(dir) === dir) throw new Error(`cannot find the cardpay package above ${__dirname}`);
  }
}
