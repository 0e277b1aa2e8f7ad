import type { HashPace } from '../hash/index.js';
import type { BufferPool } from '../net/index.js';

/** Chunks the origin of a stream hashes beyond the furthest one asked for: over the receivers' pipeline (3), with room for a feed batch. */
export const PACE_AHEAD_CHUNKS = 8;
/** With no chunk asked for this long, the origin stops pacing and hashes the rest at once (its receivers are slow, or gone). */
export const PACE_HOLD_MS = 500;

/**
 * The origin of a streamed bcast hashes its file just ahead of what its first receiver asks for,
 * and keeps each chunk it hashed in memory until it is asked for: the chunk is served from the
 * very bytes its digest was computed from, with no second read or hash of the file. Unpaced, the
 * origin hashed the whole file in its first ~0.7 s, then read and hashed every chunk again to
 * serve it. A chunk asked for again later (a hop that lost its upstream) is read and verified as
 * before.
 */
export class StreamPacer implements HashPace {
  private furthest = -1;
  private unpaced = false;
  private readonly kept = new Map<number, Buffer>();
  private resume: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly chunkBytes: number, private readonly buffers: BufferPool,
    private readonly ahead = PACE_AHEAD_CHUNKS, private readonly holdMs = PACE_HOLD_MS) {}

  mayHash(i: number, go: () => void): boolean {
    if (this.unpaced || i <= this.furthest + this.ahead) return true;
    this.resume = go;
    this.timer = setTimeout(() => {
      this.unpaced = true;
      this.wake();
    }, this.holdMs);
    return false;
  }

  buffer(length: number): Buffer {
    return this.buffers.take(length);
  }

  hashed(i: number, bytes: Buffer): void {
    // Chunks nobody took (asked for by no one, or while unpaced) go back; the rest wait.
    for (const [k, b] of this.kept) {
      if (k >= this.furthest) break;
      this.kept.delete(k);
      this.buffers.give(b);
    }
    if (this.kept.size > this.ahead) this.buffers.give(bytes);
    else this.kept.set(i, bytes);
  }

  /**
   * A receiver asks for the chunk at `offset`: the hashed bytes if kept (then the caller's), else
   * undefined (read and verify the file). Hashing moves on.
   */
  take(offset: number, length: number): Buffer | undefined {
    const i = offset / this.chunkBytes;
    if (!Number.isInteger(i)) return undefined;
    if (i > this.furthest) {
      this.furthest = i;
      this.wake();
    }
    const b = this.kept.get(i);
    if (!b || b.length !== length) return undefined;
    this.kept.delete(i);
    return b;
  }

  /** Stops pacing (hashing runs to its end) and drops what is kept. */
  close(): void {
    this.unpaced = true;
    this.wake();
    this.kept.clear();
  }

  private wake(): void {
    const go = this.resume;
    if (!go) return;
    this.resume = undefined;
    clearTimeout(this.timer);
    go();
  }
}
