import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The directory of dftfs's package.json, found upward from this module: it runs from tsc's
 * output (dist/src/cli/) and from the bundle (dist/bundle/), at different depths.
 */
export function packageRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    try {
      if ((JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === 'dftfs') return dir;
    } catch {
      // no package.json here, or not ours: look further up
    }
    if (path.dirname(dir) === dir) throw new Error('dftfs: cannot find its package.json above ' + fileURLToPath(import.meta.url));
  }
}
