/**
 * A token bucket shared by all uploads of an agent (`--bwlimit`, like rsync's). A burst of one
 * chunk keeps frames whole; the long-run rate is `bytesPerSec`.
 */
export class RateLimiter {
  private tokens: number;
  private last = performance.now();
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly bytesPerSec: number, readonly burstBytes = 4 * 1024 * 1024) {
    this.tokens = burstBytes;
  }

  /** Resolves when `n` bytes may be sent; callers are served in order. */
  take(n: number): Promise<void> {
    const turn = this.chain.then(async () => {
      for (;;) {
        const now = performance.now();
        this.tokens = Math.min(this.burstBytes, this.tokens + ((now - this.last) / 1000) * this.bytesPerSec);
        this.last = now;
        if (this.tokens >= Math.min(n, this.burstBytes)) {
          this.tokens -= n;
          return;
        }
        const waitMs = ((Math.min(n, this.burstBytes) - this.tokens) / this.bytesPerSec) * 1000;
        await new Promise((r) => setTimeout(r, Math.max(1, waitMs)));
      }
    });
    this.chain = turn;
    return turn;
  }
}

/** Parses `--bwlimit` values: a number with an optional k/m/g suffix (bytes per second, like rsync; 1024-based). */
export function parseRate(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)(?:i?b)?(?:\/s)?$/i.exec(s.trim());
  if (!m) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const v = Number(m[1]) * mult;
  return v > 0 ? v : undefined;
}
