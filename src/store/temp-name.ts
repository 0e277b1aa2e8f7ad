import { randomBytes } from 'node:crypto';
import path from 'node:path';

/**
 * The temp name dftfs writes a file under before renaming it into place in a user's tree:
 * hidden, beside the target (same file system, so the rename is atomic).
 */
export const tempBeside = (file: string) => path.join(path.dirname(file), `.${path.basename(file)}.dftfs-${randomBytes(4).toString('hex')}`);

const TEMP_RE = /^\..+\.dftfs-[0-9a-f]{8}$/;

/** A name made by tempBeside: a file still being placed (or left by a crash), never part of a tree. */
export const isTempName = (base: string) => TEMP_RE.test(base);
