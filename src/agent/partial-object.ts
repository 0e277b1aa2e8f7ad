import fsp from 'node:fs/promises';
import { DftfsError, digestMismatch } from '../errors.js';
import { createHasher, digestBytes, type Hasher } from '../hash/index.js';
import type { BufferPool, ObjectName } from '../net/index.js';
import type { ObjectStore } from '../store/index.js';
import type { ObjectDesc } from './object-desc.js';

/**
 * Objects up to this size are received in memory and written to the store once, when complete:
 * a temp file per small object (create, truncate, write, close) cost more than its bytes.
 */
export const IN_MEMORY_MAX_BYTES = 256 * 1024;

/**
 * Chunks kept in memory for peers, at most: the copies a waiting peer has not taken yet, and once
 * a chain's next hop has asked for a chunk of the object, the latest chunks written. A chain hop's downstream
 * asks for a few chunks ahead (the fetcher's pipeline): about as often just before a chunk lands
 * as just after.
 */
const HANDOFF_MAX_CHUNKS = 4;

/**
 * An object being received: a temp file in the store (or a buffer, for a small object), filled
 * chunk by chunk in any order. A chunk
 * is written only after its digest checks out, and from then on it can be served to other peers
 * (the swarm grows while the transfer runs); a peer already waiting for it gets it from memory as
 * soon as it checks out, while it is written. The whole-file digest advances over the contiguous
 * prefix as chunks land, so completing costs no second pass when chunks arrive in order. It is not
 * computed at all when the verified chunks already prove the file: an object of one chunk (its chunk
 * digest is its digest), or a descriptor the origin made (`chunksProveWhole`; FetchOptions.descFromOrigin says when).
 * Peers ask for it by `name`: its digest, or a stream name while the origin is still hashing it
 * (then `desc` fills in as the digests arrive, its own digest last, before commit).
 */
export class PartialObject {
  readonly tmp: string;
  private readonly present: boolean[];
  private count = 0;
  private fd: fsp.FileHandle | undefined;
  private mem: Buffer | undefined;
  /** Undefined when the verified chunks prove the file (see above). */
  private readonly whole: Hasher | undefined;
  private readonly oneChunk: boolean;
  private hashedUpTo = 0;
  private hashing: Promise<void> = Promise.resolve();
  private readonly waiters = new Map<number, Array<(v: boolean) => void>>();
  /** Copies of chunks a peer was waiting for when they landed, until it takes them (`takeHandoff`). */
  private readonly handoff = new Map<number, Buffer>();
  /**
   * Per chunk, the first peer waiting for it with `waitFor(…, handoff)`: woken as soon as the chunk
   * is verified, with its copy to take, while the chunk is still being written here.
   */
  private readonly handoffWaiters = new Map<number, (v: boolean) => void>();
  /** A chain's next hop has asked for a chunk of this object: it will ask for the rest, so recent chunks are kept. */
  private forwarded = false;
  bytesReceived = 0;

  /**
   * `handoffBuffers`, when given, is where a chunk that a peer is waiting for is copied as it
   * lands (see `takeHandoff`).
   */
  constructor(private readonly store: ObjectStore, readonly desc: ObjectDesc, chunksProveWhole = false, readonly name: ObjectName = desc.digest,
    private readonly handoffBuffers?: BufferPool) {
    this.tmp = store.tempPath('partial');
    this.present = new Array<boolean>(desc.chunks.length).fill(false);
    const only = desc.chunks.length === 1 ? desc.chunks[0]! : undefined;
    this.oneChunk = only?.chunkOffset === 0 && only.chunkSize === desc.size;
    this.whole = this.oneChunk || chunksProveWhole ? undefined : createHasher();
  }

  async open(): Promise<this> {
    if (this.desc.size <= IN_MEMORY_MAX_BYTES) {
      this.mem = Buffer.alloc(this.desc.size);
      return this;
    }
    this.fd = await fsp.open(this.tmp, 'w+', 0o644);
    await this.fd.truncate(this.desc.size);
    return this;
  }

  get complete(): boolean {
    return this.count === this.desc.chunks.length;
  }

  has(i: number): boolean {
    return this.present[i] === true;
  }

  /** Chunk indices held so far (what a `who` answer advertises). */
  held(): number[] {
    const out: number[] = [];
    this.present.forEach((p, i) => p && out.push(i));
    return out;
  }

  missing(): number[] {
    const out: number[] = [];
    this.present.forEach((p, i) => !p && out.push(i));
    return out;
  }

  /**
   * Verifies and writes chunk `i`; throws ERR_DFTFS_DIGEST_MISMATCH (nothing written) if it is not
   * the chunk. Nothing holds `bytes` once this settles (the caller reuses their buffer).
   */
  async write(i: number, bytes: Buffer): Promise<void> {
    const c = this.desc.chunks[i]!;
    const actual = digestBytes(bytes);
    if (bytes.length !== c.chunkSize || actual !== c.chunkDigest) throw digestMismatch(`chunk ${i} of ${this.name}`, c.chunkDigest, actual);
    if (this.present[i]) return;
    // A chain's next hop waiting for this chunk gets it now, verified, not once it is written
    // here: a write took 13-16 ms here (more where the disk is slow or writeback throttles),
    // and every hop below waited for it. Once the object is forwarded, a chunk nobody waits for
    // yet is kept too: the next hop's request for it often lands just after it (in 4-receiver
    // runs at 400 Mbit, 77-156 of 200 chunks a hop were read back from the file), and it is served
    // from the copy instead of a thread-pool read queued behind this hop's writes.
    const early = this.handoffWaiters.get(i);
    if (early || (this.forwarded && this.handoffBuffers && !this.mem)) this.keepForHandoff(i, bytes);
    if (early) {
      this.handoffWaiters.delete(i);
      early(true);
    }
    if (this.mem) bytes.copy(this.mem, c.chunkOffset);
    else await this.fd!.write(bytes, 0, bytes.length, c.chunkOffset);
    this.present[i] = true;
    this.count++;
    this.bytesReceived += bytes.length;
    const hashed = this.advanceWhole(i, bytes);
    // Whoever began waiting while the chunk was being written reads it from the file.
    const late = this.handoffWaiters.get(i);
    if (late) late(true);
    for (const w of this.waiters.get(i) ?? []) w(true);
    this.waiters.delete(i);
    await hashed;
  }

  /**
   * A verified chunk a peer waited for (`waitFor` with `handoff`), in a buffer of `handoffBuffers`
   * that is now the caller's; undefined when none is kept (then `read` it). A bcast chain hop
   * forwards every chunk it receives, and its downstream is waiting for each: reading it back from
   * the file just written cost the hop a thread-pool round trip per chunk; a copy in memory costs
   * ~0.1 ms per MiB.
   */
  takeHandoff(i: number): Buffer | undefined {
    const b = this.handoff.get(i);
    this.handoff.delete(i);
    return b;
  }

  /**
   * A chain's next hop asks for a chunk of this object: from now on the latest chunks written are
   * kept for it. (A swarm peer asks for a few chunks, not all: for it, every later chunk would be
   * copied for reads that may never come.)
   */
  chainAsked(): void {
    this.forwarded = true;
  }

  private keepForHandoff(i: number, bytes: Buffer): void {
    const copy = this.handoffBuffers!.take(bytes.length);
    bytes.copy(copy);
    this.handoff.set(i, copy);
    // The oldest copies nobody took go back to the pool (only this map held them), once their
    // chunks are in the file: a chunk still being written may have an asker woken for its copy
    // that has not taken it yet (several chunks can land in one turn), and no file to read it from.
    for (const [k, b] of this.handoff) {
      if (this.handoff.size <= HANDOFF_MAX_CHUNKS) break;
      if (!this.present[k]) continue;
      this.handoff.delete(k);
      this.handoffBuffers!.give(b);
    }
  }

  /** Settles once the whole-file digest has taken in what it can, `bytes` (chunk `i`) included. */
  private advanceWhole(i: number, bytes: Buffer): Promise<void> {
    const whole = this.whole;
    if (!whole) return Promise.resolve();
    return this.hashing = this.hashing.then(async () => {
      // Chunks that arrived early are read back from the file once the gap before them fills.
      while (this.hashedUpTo < this.desc.chunks.length && this.present[this.hashedUpTo]) {
        const k = this.hashedUpTo;
        whole.update(k === i ? bytes : await this.read(k));
        this.hashedUpTo++;
      }
    });
  }

  /** The index of the chunk at `offset` of `size` bytes, or -1. */
  chunkAt(offset: number, size: number): number {
    const i = this.desc.chunks.findIndex((c) => c.chunkOffset === offset);
    return i >= 0 && this.desc.chunks[i]!.chunkSize === size ? i : -1;
  }

  /** Reads a chunk this object holds (already verified on arrival), into `into` when given (of the chunk's size). */
  async read(i: number, into?: Buffer): Promise<Buffer> {
    if (!this.present[i]) throw new DftfsError('ERR_DFTFS_NOT_FOUND', `chunk ${i} not received yet`);
    const c = this.desc.chunks[i]!;
    if (this.mem) return Buffer.from(this.mem.subarray(c.chunkOffset, c.chunkOffset + c.chunkSize));
    const buf = into ?? Buffer.allocUnsafe(c.chunkSize);
    await this.fd!.read(buf, 0, c.chunkSize, c.chunkOffset);
    return buf;
  }

  /** Chunk indices covering bytes [pos, pos + len). */
  chunksCovering(pos: number, len: number): number[] {
    const out: number[] = [];
    this.desc.chunks.forEach((c, i) => {
      if (c.chunkOffset < pos + len && c.chunkOffset + c.chunkSize > pos) out.push(i);
    });
    return out;
  }

  /** Reads bytes whose chunks are all present (a mount serving a read before the whole file is here). */
  async readAt(buf: Buffer, len: number, pos: number): Promise<number> {
    if (this.mem) return this.mem.copy(buf, 0, pos, Math.min(pos + len, this.mem.length));
    if (!this.fd) throw new DftfsError('ERR_DFTFS_CLOSED', `object ${this.name} is no longer partial`);
    const { bytesRead } = await this.fd.read(buf, 0, len, pos);
    return bytesRead;
  }

  /**
   * Resolves true when chunk `i` is present, false after `ms` or on abort. With `handoff`, the
   * first such caller for a chunk is woken as soon as the chunk is verified, before it is written
   * here, and takes its copy from memory (`takeHandoff`); any other caller is woken once the chunk
   * is written, and reads it.
   */
  waitFor(i: number, ms: number, signal?: AbortSignal, handoff = false): Promise<boolean> {
    if (this.present[i]) return Promise.resolve(true);
    const early = handoff && this.handoffBuffers !== undefined && !this.mem && !this.handoffWaiters.has(i);
    return new Promise((resolve) => {
      const done = (v: boolean) => {
        if (this.handoffWaiters.get(i) === done) this.handoffWaiters.delete(i);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(v);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), ms);
      signal?.addEventListener('abort', onAbort);
      if (early) {
        this.handoffWaiters.set(i, done);
        return;
      }
      const list = this.waiters.get(i) ?? [];
      list.push(done);
      this.waiters.set(i, list);
    });
  }

  /** Checks the whole-file digest and moves the file into the store. */
  async commit(): Promise<void> {
    if (!this.complete) throw new DftfsError('ERR_DFTFS_IO', `object ${this.name} is incomplete`);
    await this.hashing;
    this.handoff.clear();
    const actual = this.desc.size === 0 ? digestBytes(new Uint8Array(0)) : this.provenDigest();
    if (actual !== this.desc.digest) {
      await this.abort();
      throw digestMismatch(`object ${this.desc.digest}`, this.desc.digest, actual);
    }
    if (this.mem) {
      await this.store.putVerified(this.mem, this.desc.digest);
      this.mem = undefined;
      return;
    }
    await this.fd!.close();
    this.fd = undefined;
    await this.store.commit(this.tmp, this.desc.digest);
  }

  /** The digest the received bytes have: hashed as they came, or what their verified chunks prove. */
  private provenDigest(): string {
    if (this.whole) return this.whole.digest();
    return this.oneChunk ? this.desc.chunks[0]!.chunkDigest : this.desc.digest;
  }

  async abort(): Promise<void> {
    this.mem = undefined;
    this.handoff.clear();
    for (const w of [...this.handoffWaiters.values()]) w(false);
    await this.fd?.close().catch(() => undefined);
    this.fd = undefined;
    await fsp.rm(this.tmp, { force: true });
    for (const [, list] of this.waiters) for (const w of list) w(false);
    this.waiters.clear();
  }
}
