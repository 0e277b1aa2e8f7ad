import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What dftfs needs to know of its own package. */
export interface OwnPackage {
  /** The directory of its package.json. */
  root: string;
  version: string;
  /** The dftfs command, as an absolute path (package.json's `bin`). */
  bin: string;
}

let own: OwnPackage | undefined;

/**
 * dftfs's package.json, found upward from this module: it runs from tsc's output (dist/src/cli/)
 * and from the bundle (dist/bundle/), at different depths.
 */
export function ownPackage(): OwnPackage {
  if (own) return own;
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    let pkg: { name?: unknown; version?: unknown; bin?: { dftfs?: unknown } } | undefined;
    try {
      pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as typeof pkg;
    } catch {
      // no package.json here: look further up
    }
    if (pkg?.name === 'dftfs' && typeof pkg.version === 'string' && typeof pkg.bin?.dftfs === 'string') {
      return (own = { root: dir, version: pkg.version, bin: path.join(dir, pkg.bin.dftfs) });
    }
    if (path.dirname(dir) === dir) throw new Error(`dftfs: cannot find its package.json above ${fileURLToPath(import.meta.url)}`);
  }
}
