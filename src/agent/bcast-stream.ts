/**
 * A streamed bcast: the origin orders its receivers to fetch a file before it has hashed it. The
 * order names the object by a stream name and gives only its size and chunk size; the chunk
 * digests, and at the end the whole file's, come from the origin over NATS (a digest feed) while
 * the chunks themselves already flow down the chain. A receiver fetches a chunk only once its
 * digest is known, and verifies it as always; it stores the object under its digest at the end.
 * Without this, every receiver waited for a whole hashing pass at the origin (~0.3 s for 200 MiB
 * here) before the first byte moved.
 */
import { randomBytes } from 'node:crypto';
import { DftfsError } from '../errors.js';
import { isDigest, type Digest } from '../hash/index.js';
import { isStreamName, type StreamName } from '../net/index.js';
import { MAX_CHUNK_BYTES } from '../toc/index.js';
import type { ObjectDesc } from './object-desc.js';

export const newStreamName = (): StreamName => `bcast:${randomBytes(16).toString('hex')}`;

/** Stands for a chunk digest not known yet: it equals no real digest, so no bytes can be written against it. */
export const UNKNOWN_DIGEST = 'blake3:' as Digest;

/** Bytes of the smallest chunk grid a stream order may ask for (a bcast uses 1 MiB). */
const MIN_STREAM_CHUNK_BYTES = 64 * 1024;
/** Chunks a stream may have: a 4 TiB file of 4 MiB chunks. Receivers allocate per chunk. */
const MAX_STREAM_CHUNKS = 1 << 20;
/** Digests per feed answer: ~75 bytes of JSON each, far under NATS's 1 MiB max_payload. */
export const FEED_PAGE_DIGESTS = 2048;
/** How long the origin holds a feed request waiting for more digests, before answering with none. */
export const FEED_HOLD_MS = 2000;
/** A feed request with no answer this long after FEED_HOLD_MS: the origin is gone. */
const FEED_SLACK_MS = 8000;

/** What a streamed bcast order says about the object. */
export interface StreamOrder {
  name: StreamName;
  size: number;
  chunkBytes: number;
}

/** Checks a stream order that came over NATS. */
export function parseStreamOrder(raw: unknown): StreamOrder {
  const bad = (why: string) => new DftfsError('ERR_DFTFS_PROTOCOL', `malformed stream order: ${why}`);
  if (!raw || typeof raw !== 'object') throw bad('not an object');
  const o = raw as Record<string, unknown>;
  if (!isStreamName(o.name)) throw bad('name');
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size <= 0) throw bad('size');
  if (typeof o.chunkBytes !== 'number' || !Number.isSafeInteger(o.chunkBytes) || o.chunkBytes < MIN_STREAM_CHUNK_BYTES || o.chunkBytes > MAX_CHUNK_BYTES) throw bad('chunkBytes');
  if (Math.ceil(o.size / o.chunkBytes) > MAX_STREAM_CHUNKS) throw bad('too many chunks');
  return { name: o.name, size: o.size, chunkBytes: o.chunkBytes };
}

/** The descriptor a receiver fills in as the feed delivers: every digest unknown at first. */
export function streamDesc(o: StreamOrder): ObjectDesc {
  const chunks = [];
  for (let off = 0; off < o.size; off += o.chunkBytes) chunks.push({ chunkOffset: off, chunkSize: Math.min(o.chunkBytes, o.size - off), chunkDigest: UNKNOWN_DIGEST });
  return { digest: UNKNOWN_DIGEST, size: o.size, chunks };
}

/** One answer of the feed: digests of chunks `from`…, and the whole file's once the last is in. */
export interface FeedAnswer {
  from: number;
  digests: Digest[];
  digest?: Digest;
}

/**
 * The origin's side: the digests as they are computed, handed to whoever asks from an index.
 * A request for nothing new waits (up to FEED_HOLD_MS) for the next digest.
 */
export class DigestFeed {
  private readonly digests: Digest[] = [];
  private whole: Digest | undefined;
  private failure: DftfsError | undefined;
  private readonly waiters = new Set<() => void>();

  add(i: number, d: Digest): void {
    if (i !== this.digests.length) throw new Error(`digest ${i} out of order`);
    this.digests.push(d);
    this.wake();
  }

  finish(digest: Digest): void {
    this.whole = digest;
    this.wake();
  }

  fail(err: DftfsError): void {
    this.failure = err;
    this.wake();
  }

  async answer(from: number): Promise<FeedAnswer> {
    if (from >= this.digests.length && !this.whole && !this.failure) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, FEED_HOLD_MS);
        this.waiters.add(done);
      });
    }
    if (this.failure) throw this.failure;
    const digests = this.digests.slice(from, from + FEED_PAGE_DIGESTS);
    const last = from + digests.length === this.digests.length;
    return { from, digests, ...(last && this.whole ? { digest: this.whole } : {}) };
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** Checks a feed answer for a stream of `count` chunks, asked from `from`. */
export function parseFeedAnswer(b: Record<string, unknown>, from: number, count: number): FeedAnswer {
  const bad = (why: string) => new DftfsError('ERR_DFTFS_PROTOCOL', `malformed digest feed answer: ${why}`);
  if (b.from !== from) throw bad('from');
  if (!Array.isArray(b.digests) || b.digests.length > FEED_PAGE_DIGESTS || from + b.digests.length > count || !b.digests.every(isDigest)) throw bad('digests');
  if (b.digest !== undefined && !isDigest(b.digest)) throw bad('digest');
  return { from, digests: b.digests as Digest[], ...(b.digest ? { digest: b.digest as Digest } : {}) };
}

/** The receiver's view of the feed, as the fetcher reads it. */
export interface ArrivingDigests {
  known(i: number): boolean;
  onMore(listener: () => void): void;
}

/**
 * Asks the origin's feed until `desc` holds every chunk digest and the whole file's; fills them in
 * as they come (listeners hear of each batch) and resolves with the whole digest. Rejects if the
 * origin fails (a file that changed while it was read) or stops answering.
 */
export class FeedFollower implements ArrivingDigests {
  private next = 0;
  private readonly listeners: Array<() => void> = [];
  readonly digest: Promise<Digest>;

  constructor(private readonly desc: ObjectDesc, ask: (from: number, timeoutMs: number) => Promise<Record<string, unknown>>) {
    this.digest = (async () => {
      const count = desc.chunks.length;
      for (;;) {
        const a = parseFeedAnswer(await ask(this.next, FEED_HOLD_MS + FEED_SLACK_MS), this.next, count);
        a.digests.forEach((d, k) => { desc.chunks[a.from + k]!.chunkDigest = d; });
        this.next += a.digests.length;
        if (a.digests.length) for (const l of this.listeners) l();
        if (a.digest && this.next === count) {
          desc.digest = a.digest;
          return a.digest;
        }
      }
    })();
    this.digest.catch(() => undefined); // the fetch reads it; not an unhandled rejection meanwhile
  }

  known(i: number): boolean {
    return i < this.next;
  }

  onMore(listener: () => void): void {
    this.listeners.push(listener);
  }
}
