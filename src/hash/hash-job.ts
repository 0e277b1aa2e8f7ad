/** Messages between the hash pool and its worker threads. */

export interface HashJob {
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

export interface HashResult {
  id: number;
  chunkDigests: string[];
  wholeDigest?: string;
  bytesRead: number;
  error?: { code: string; message: string };
}
