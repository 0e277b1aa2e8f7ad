/**
 * The one error class of dftfs. Code branches on `code`, never on message text; each edge (CLI,
 * FUSE, NATS replies, peer frames) translates it once.
 */

export type DftfsErrorCode =
  | 'ERR_DFTFS_USAGE'
  | 'ERR_DFTFS_NOT_FOUND'
  | 'ERR_DFTFS_NOT_A_DIRECTORY'
  | 'ERR_DFTFS_IO'
  | 'ERR_DFTFS_DIGEST_MISMATCH'
  | 'ERR_DFTFS_CORRUPT_OBJECT'
  | 'ERR_DFTFS_MALFORMED_TOC'
  | 'ERR_DFTFS_UNSAFE_PATH'
  | 'ERR_DFTFS_MALFORMED_ARCHIVE'
  | 'ERR_DFTFS_FILE_CHANGED'
  | 'ERR_DFTFS_CLOSED'
  | 'ERR_DFTFS_PROTOCOL'
  | 'ERR_DFTFS_AUTH'
  | 'ERR_DFTFS_BUSY'
  | 'ERR_DFTFS_TIMEOUT'
  | 'ERR_DFTFS_UNAVAILABLE'
  | 'ERR_DFTFS_NATS';

export interface DftfsErrorOptions {
  /** What the user can do about it, shown on its own line by the CLI. */
  hint?: string;
  cause?: unknown;
}

export class DftfsError extends Error {
  readonly code: DftfsErrorCode;
  readonly hint: string | undefined;

  constructor(code: DftfsErrorCode, message: string, opts: DftfsErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DftfsError';
    this.code = code;
    this.hint = opts.hint;
  }
}

export function isDftfsError(err: unknown, code?: DftfsErrorCode): err is DftfsError {
  return err instanceof DftfsError && (code === undefined || err.code === code);
}

/** The errno code of a Node system error (`ENOENT`, …), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

export const usageError = (message: string, hint?: string) =>
  new DftfsError('ERR_DFTFS_USAGE', message, { hint });

export const digestMismatch = (what: string, expected: string, actual: string) =>
  new DftfsError('ERR_DFTFS_DIGEST_MISMATCH', `${what}: digest ${actual} does not match the expected ${expected}`, {
    hint: 'the bytes were changed or corrupted on the way; they were not kept',
  });

export const malformedToc = (why: string) =>
  new DftfsError('ERR_DFTFS_MALFORMED_TOC', `malformed TOC: ${why}`);

export const unsafePath = (name: string, why: string) =>
  new DftfsError('ERR_DFTFS_UNSAFE_PATH', `refused path ${JSON.stringify(name)}: ${why}`);
