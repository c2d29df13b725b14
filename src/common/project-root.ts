import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root (the nearest folder with package.json), whether running from src/ or dist/. */
export function projectRoot(from: string = __dirname): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}
