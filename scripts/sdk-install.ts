import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SdkInstall {
  ms: number;
  /** Every package the install put into node_modules, `cardpay` included. */
  packages: string[];
  /** Those with an install script (a native build, a download): none is the budget. */
  withInstallScript: string[];
}

/**
 * `npm install <tarball>` in an empty project, as a merchant would install the packed SDK: how
 * long it took and what it brought.
 */
export function installInEmptyProject(
  tarball: string,
  dir = mkdtempSync(join(tmpdir(), 'cardpay-shop-')),
): SdkInstall & { dir: string } {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'shop', private: true }));
  const started = Date.now();
  execFileSync('npm', ['install', tarball, '--no-audit', '--no-fund'], { cwd: dir, stdio: 'pipe' });
  const ms = Date.now() - started;
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { hasInstallScript?: boolean }>;
  };
  const packages = Object.keys(lock.packages).filter(Boolean);
  return {
    dir,
    ms,
    packages: packages.map((p) => p.replace(/^.*node_modules\//, '')),
    withInstallScript: packages
      .filter((p) => lock.packages[p].hasInstallScript)
      .map((p) => p.replace(/^.*node_modules\//, '')),
  };
}

/** Packs one workspace (`sdk`, `platform`, `testing`) into `out`, built or not; the tarball's path and files. */
export function packWorkspace(
  root: string,
  name: string,
  out: string,
): { file: string; files: string[] } {
  const json = execFileSync(
    'npm',
    ['pack', '-w', `packages/${name}`, '--ignore-scripts', '--pack-destination', out, '--json'],
    { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const [info] = JSON.parse(json.slice(json.indexOf('['))) as {
    filename: string;
    files: { path: string }[];
  }[];
  return { file: join(out, info.filename), files: info.files.map((f) => f.path) };
}
