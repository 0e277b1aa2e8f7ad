import { randomBytes } from 'node:crypto';
import path from 'node:path';

/** Temp name suffixes: a random start per process, then counting (a crypto call per name cost ~20 µs). */
let nextSuffix = randomBytes(4).readUInt32BE(0);

/**
 * The temp name dftfs writes a file under before renaming it into place in a user's tree:
 * hidden, beside the target (same file system, so the rename is atomic). Callers create it
 * exclusively, so a name another process happens to use at the same moment fails, never mixes.
 */
export const tempBeside = (file: string) => {
  nextSuffix = (nextSuffix + 1) >>> 0;
  return path.join(path.dirname(file), `.${path.basename(file)}.dftfs-${nextSuffix.toString(16).padStart(8, '0')}`);
};

const TEMP_RE = /^\..+\.dftfs-[0-9a-f]{8}$/;

/** A name made by tempBeside: a file still being placed (or left by a crash), never part of a tree. */
export const isTempName = (base: string) => TEMP_RE.test(base);
