export { type Digest, type Hasher, DIGEST_PREFIX, isDigest, parseDigest, digestHex, digestBytes, createHasher } from './digest.js';
export { HashPool, INLINE_HASH_BYTES, type HashPoolOptions, type HashRequest } from './hash-pool.js';
export { hashInTurns, type HashInTurnsResult } from './hash-in-turns.js';
export type { FilesResult, HashResult } from './hash-job.js';
