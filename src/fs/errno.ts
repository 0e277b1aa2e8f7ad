import os from 'node:os';
import { errnoCode, isDftfsError } from '../errors.js';

const ERRNO = os.constants.errno as Record<string, number>;

/** An error carrying an errno name, thrown inside FUSE ops and turned into -errno at the boundary. */
export function fsError(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * The one translation of errors into FUSE's negative errno: system errors keep theirs, dftfs
 * errors map by code (a file that cannot be fetched is EIO), anything else is EIO.
 */
export function toErrno(err: unknown): number {
  if (isDftfsError(err)) {
    switch (err.code) {
      case 'ERR_DFTFS_NOT_FOUND': return -ERRNO.ENOENT!;
      case 'ERR_DFTFS_UNSAFE_PATH': return -ERRNO.EACCES!;
      default: return -ERRNO.EIO!;
    }
  }
  const code = errnoCode(err);
  const n = code ? ERRNO[code] : undefined;
  return n ? -n : -ERRNO.EIO!;
}
