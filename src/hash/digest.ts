import blake3 from 'blake3-wasm';
import { DftfsError } from '../errors.js';

/** A digest at a boundary: `blake3:` + 64 lowercase hex characters. */
export type Digest = `blake3:${string}`;

export const DIGEST_PREFIX = 'blake3:';
const DIGEST_RE = /^blake3:[0-9a-f]{64}$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

export function parseDigest(s: string): Digest {
  if (!isDigest(s)) {
    throw new DftfsError('ERR_DFTFS_USAGE', `not a digest: ${JSON.stringify(s)}`, {
      hint: 'a digest is written blake3:<64 lowercase hex characters>',
    });
  }
  return s;
}

export const digestHex = (d: Digest): string => d.slice(DIGEST_PREFIX.length);

/**
 * Bytes are handed to the wasm hasher at most this many at a time: wasm memory grows to hold the
 * largest input it was given and never shrinks, so one 32 MiB TOC would keep 32 MiB resident.
 */
const UPDATE_BYTES = 1 << 20;

/** BLAKE3 of bytes in memory (the same value `b3sum` prints). */
export function digestBytes(bytes: Uint8Array): Digest {
  const h = blake3.createHash();
  for (let off = 0; off < bytes.length; off += UPDATE_BYTES) h.update(bytes.subarray(off, off + UPDATE_BYTES));
  return `blake3:${h.digest('hex')}`;
}

/** An incremental hasher for streams. */
export interface Hasher {
  update(bytes: Uint8Array): void;
  digest(): Digest;
}

export function createHasher(): Hasher {
  const h = blake3.createHash();
  return {
    update: (bytes) => {
      for (let off = 0; off < bytes.length; off += UPDATE_BYTES) h.update(bytes.subarray(off, off + UPDATE_BYTES));
    },
    digest: () => `blake3:${h.digest('hex')}`,
  };
}
