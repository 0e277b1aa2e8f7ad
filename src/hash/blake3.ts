/**
 * The BLAKE3 implementation: the Rust `blake3` crate through @napi-rs/blake-hash's prebuilt
 * binary for Linux x64 with glibc (an optional dependency, installed only there) when it loads
 * (SIMD, ~2.7 GB/s per core here), else blake3-wasm (~0.4 GB/s). Both give the digest `b3sum`
 * prints. `DFTFS_BLAKE3=wasm` forces the fallback. Why a second package: native-notes/hashing.md.
 */
import { createRequire } from 'node:module';

/** One incremental BLAKE3 computation. */
export interface Blake3 {
  update(bytes: Uint8Array): void;
  hex(): string;
}

/** What both packages' hashers offer. */
interface Impl {
  update(input: Uint8Array): unknown;
  digest(format: 'hex'): string;
}

/**
 * Bytes are handed to the wasm hasher at most this many at a time: wasm memory grows to hold the
 * largest input it was given and never shrinks, so one 32 MiB TOC would keep 32 MiB resident.
 */
const WASM_UPDATE_BYTES = 1 << 20;

const require = createRequire(import.meta.url);

/** The native hasher can also start over, which a fresh one per small input costs more than. */
interface NativeImpl extends Impl {
  reset(): void;
}

function loadNative(): (() => NativeImpl) | undefined {
  if (process.env.DFTFS_BLAKE3 === 'wasm') return undefined;
  try {
    const { Blake3Hasher } = require('@napi-rs/blake-hash-linux-x64-gnu') as { Blake3Hasher: new () => NativeImpl };
    return () => new Blake3Hasher();
  } catch {
    return undefined; // not installed (another platform) or not loadable: the wasm build below
  }
}

function loadWasm(): () => Impl {
  const { createHash } = require('blake3-wasm') as { createHash: () => Impl };
  return createHash;
}

const native = loadNative();
const wasm = native ? undefined : loadWasm();

/** Which implementation this process hashes with. */
export const blake3Backend: 'native' | 'wasm' = native ? 'native' : 'wasm';

export function newBlake3(): Blake3 {
  if (native) {
    const h = native();
    return { update: (bytes) => { h.update(bytes); }, hex: () => h.digest('hex') };
  }
  const h = wasm!();
  return {
    update: (bytes) => {
      for (let off = 0; off < bytes.length; off += WASM_UPDATE_BYTES) h.update(bytes.subarray(off, off + WASM_UPDATE_BYTES));
    },
    hex: () => h.digest('hex'),
  };
}

let shared: NativeImpl | undefined;

/**
 * BLAKE3 of bytes in memory, as hex. Natively one hasher is reset and reused (hashing is
 * synchronous, so no call can interleave): a new one per call cost ~9 µs against ~2.5 µs for a
 * 4 KiB input, 5,000 of them in a `get` of as many small files.
 */
export function blake3Hex(bytes: Uint8Array): string {
  if (!native) {
    const h = newBlake3();
    h.update(bytes);
    return h.hex();
  }
  shared ??= native();
  shared.reset();
  shared.update(bytes);
  return shared.digest('hex');
}
