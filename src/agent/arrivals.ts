import type { Digest } from '../hash/index.js';
import { ChunkCache } from './chunk-cache.js';

/** Bytes of a batch's objects kept for receivers chained behind it, oldest dropped first. */
export const ARRIVALS_KEPT_BYTES = 32 * 1024 * 1024;

/**
 * The small objects of a batch an agent is receiving (`get` of a directory writes them straight
 * into its tree, not into the store), kept in memory as they arrive so that the next receiver of
 * the same batch, chained behind this one, is served them instead of the origin. An asker that
 * comes before an object may wait for it; once the batch ends, what did not come is not waited for.
 */
export class Arrivals {
  private readonly kept: ChunkCache;
  private readonly waiters = new Map<Digest, Set<(bytes: Buffer | undefined) => void>>();
  private ended = false;

  constructor(private readonly expected: ReadonlySet<Digest>, maxBytes = ARRIVALS_KEPT_BYTES) {
    this.kept = new ChunkCache(maxBytes, Infinity);
  }

  expects(digest: Digest): boolean {
    return this.expected.has(digest);
  }

  /** An object of the batch arrived, verified. */
  arrived(digest: Digest, bytes: Uint8Array): void {
    if (!this.expected.has(digest) || this.kept.get(digest)) return;
    const copy = Buffer.from(bytes);
    this.kept.put(digest, copy);
    const ws = this.waiters.get(digest);
    this.waiters.delete(digest);
    for (const w of ws ?? []) w(copy);
  }

  /** The object's bytes: kept, or once it arrives within `waitMs`; undefined if dropped, late or not coming. */
  take(digest: Digest, waitMs: number, signal?: AbortSignal): Promise<Buffer | undefined> {
    const now = this.kept.get(digest);
    if (now || this.ended || waitMs <= 0 || !this.expected.has(digest) || signal?.aborted) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = (bytes: Buffer | undefined) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiters.get(digest)?.delete(done);
        resolve(bytes);
      };
      const onAbort = () => done(undefined);
      const timer = setTimeout(() => done(undefined), waitMs);
      signal?.addEventListener('abort', onAbort);
      let ws = this.waiters.get(digest);
      if (!ws) this.waiters.set(digest, (ws = new Set()));
      ws.add(done);
    });
  }

  /** The batch is over: nothing more arrives; askers still waiting are answered now (kept objects stay served). */
  end(): void {
    this.ended = true;
    const all = [...this.waiters.values()];
    this.waiters.clear();
    for (const ws of all) for (const w of ws) w(undefined);
  }
}
