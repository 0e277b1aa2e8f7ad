import path from 'node:path';
import { defaultHome, indexStateDir, storeDir } from '../config.js';
import { digestBytes, digestHex } from '../hash/index.js';
import { ObjectStore } from '../store/index.js';
import type { CliIo } from './output.js';

/** Arguments every command that touches the host store accepts. */
export const homeArgs = {
  home: { type: 'string', description: 'Host state directory: store and index state (default $DFTFS_HOME, /var/lib/dftfs as root, else ~/.cache/dftfs)', valueHint: 'DIR' },
  quiet: { type: 'boolean', alias: 'q', description: 'Print nothing but errors and requested output' },
} as const;

/** Per-invocation dependencies, passed to each command through citty's `data`. */
export interface CliContext {
  io: CliIo;
  env: NodeJS.ProcessEnv;
  /** A command's own exit code (`drive` passes make's on); citty drops subcommands' return values. */
  exitCode?: number;
}

export function resolveHome(arg: string | undefined, ctx: CliContext): string {
  return arg ? path.resolve(arg) : defaultHome(ctx.env);
}

export async function openStore(home: string): Promise<ObjectStore> {
  return new ObjectStore(storeDir(home)).open();
}

/** One state file per indexed directory, named by a digest of its absolute path. */
export function statePathFor(home: string, dir: string): string {
  const key = digestHex(digestBytes(Buffer.from(path.resolve(dir)))).slice(0, 24);
  return path.join(indexStateDir(home), `${key}.json`);
}
