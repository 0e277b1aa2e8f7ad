import os from 'node:os';
import path from 'node:path';

/**
 * Where a host keeps dftfs state: the shared object store and index state. One per host (all
 * agents on a host share it), overridable with DFTFS_HOME or `--home`.
 */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DFTFS_HOME) return path.resolve(env.DFTFS_HOME);
  if (process.getuid?.() === 0) return '/var/lib/dftfs';
  const cache = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'dftfs');
}

export const storeDir = (home: string) => path.join(home, 'store');
export const indexStateDir = (home: string) => path.join(home, 'index');
/** Per-mount state (upper layer, whiteouts), one directory per mount point. */
export const mountsDir = (home: string) => path.join(home, 'mounts');
