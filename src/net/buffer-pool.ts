/**
 * Buffers of one size, taken and given back. A receiving agent gets a 4 MiB DATA frame per chunk;
 * each one a fresh allocation left V8 up to ~64 MB of dead buffers to collect (it collects
 * external memory by that threshold), on top of what is in flight. Given back once their bytes are
 * stored, a few buffers serve a whole transfer.
 *
 * A buffer must be given back only by the one holder that took it, once nothing reads it any
 * more: its next taker overwrites it. One not given back is simply collected.
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];

  constructor(readonly size: number, private readonly keep: number) {}

  /** A buffer of `length` ≤ size bytes, its contents undefined. */
  take(length: number): Buffer {
    const ab = this.free.pop();
    return ab ? Buffer.from(ab, 0, length) : Buffer.allocUnsafeSlow(this.size).subarray(0, length);
  }

  /** Takes back a buffer from `take` (or any view of one); others are ignored. */
  give(view: Uint8Array): void {
    const ab = view.buffer;
    if (!(ab instanceof ArrayBuffer) || ab.byteLength !== this.size || this.free.length >= this.keep || this.free.includes(ab)) return;
    this.free.push(ab);
  }

  get idle(): number {
    return this.free.length;
  }
}
