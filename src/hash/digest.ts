import { DftfsError } from '../errors.js';
import { blake3Hex, newBlake3 } from './blake3.js';

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

/** BLAKE3 of bytes in memory (the same value `b3sum` prints). */
export function digestBytes(bytes: Uint8Array): Digest {
  return `blake3:${blake3Hex(bytes)}`;
}

/** An incremental hasher for streams. */
export interface Hasher {
  update(bytes: Uint8Array): void;
  digest(): Digest;
}

export function createHasher(): Hasher {
  const h = newBlake3();
  return { update: (bytes) => h.update(bytes), digest: () => `blake3:${h.hex()}` };
}
