import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** This repository's root (the scripts run bundled from dist/scripts, or from their sources). */
export function repositoryRoot(): string {
  for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir))
    if (existsSync(join(dir, 'project.config.json')) && existsSync(join(dir, 'packages')))
      return dir;
  throw new Error(`cannot find the repository above ${__dirname}`);
}
