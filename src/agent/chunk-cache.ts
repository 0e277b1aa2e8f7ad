import type { Digest } from '../hash/index.js';

/** Chunks at most this big are kept once served (a tree's small files). */
export const CACHED_CHUNK_MAX_BYTES = 64 * 1024;
/** Bytes of chunks kept at most, per agent. */
export const CHUNK_CACHE_MAX_BYTES = 32 * 1024 * 1024;

/**
 * Small chunks this agent has served, verified, by digest, oldest dropped first. Every receiver of
 * a tree asks its origin for each small file; after the first, the answer comes from memory instead
 * of an open, a read, a close and a hash of the file. A chunk is named by its digest, so a file
 * changed on disk since does not make a kept chunk wrong.
 */
export class ChunkCache {
  private readonly chunks = new Map<Digest, Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes = CHUNK_CACHE_MAX_BYTES, private readonly maxChunk = CACHED_CHUNK_MAX_BYTES) {}

  get(digest: Digest): Buffer | undefined {
    return this.chunks.get(digest);
  }

  /** Keeps a verified chunk (the caller checked `bytes` hash to `digest`). */
  put(digest: Digest, bytes: Buffer): void {
    if (bytes.length > this.maxChunk || this.chunks.has(digest)) return;
    this.chunks.set(digest, bytes);
    this.bytes += bytes.length;
    for (const [k, v] of this.chunks) {
      if (this.bytes <= this.maxBytes) break;
      this.chunks.delete(k);
      this.bytes -= v.length;
    }
  }
}
