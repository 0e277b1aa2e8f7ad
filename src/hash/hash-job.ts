/** Messages between the hash pool and its worker threads. */

/** One byte range of one file. */
export interface RangeJob {
  kind: 'range';
  id: number;
  path: string;
  /** First byte to hash. */
  offset: number;
  /** Bytes to hash from `offset`; the job reads exactly this many or fails. */
  length: number;
  /** Chunk size: the range is cut into chunks of this many bytes, each digested alone. */
  chunkBytes: number;
  /** Digest the range as a whole too (the whole-file digest when the range is the file). */
  whole: boolean;
  /** Skip per-chunk digests (a whole-only pass over a large file whose chunks go to other jobs). */
  chunks: boolean;
}

/**
 * Many small files digested whole, in one message: a tree of 100,000 small files costs a
 * thousand round trips to the pool instead of 100,000 (and as many promises and clones).
 */
export interface FilesJob {
  kind: 'files';
  id: number;
  /** Each file is read from its start, exactly `length` bytes (or it fails). */
  files: Array<{ path: string; length: number }>;
}

export type HashJob = RangeJob | FilesJob;

export interface HashError { code: string; message: string }

export interface HashResult {
  id: number;
  chunkDigests: string[];
  wholeDigest?: string;
  bytesRead: number;
  error?: HashError;
}

/** One entry per file of the job, in its order: the file's digest, or why it could not be read. */
export interface FilesResult {
  id: number;
  files: Array<{ digest: string; bytesRead: number } | { error: HashError }>;
}
