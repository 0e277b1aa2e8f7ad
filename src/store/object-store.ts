import { tempBeside } from './temp-name.js';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { DftfsError, digestMismatch, errnoCode } from '../errors.js';
import { createHasher, digestBytes, digestHex, type Digest } from '../hash/index.js';
import { createLogger } from '../log.js';

const log = createLogger('store');

/** Objects are read-only on disk: a hardlinked copy edited in place would corrupt the store. */
const OBJECT_MODE = 0o444;

export interface PutResult {
  digest: Digest;
  size: number;
  /** False when the object was already there and nothing was written. */
  written: boolean;
}

/**
 * A content-addressed store shared by every dftfs process on a host: `objects/ab/cdef…` named by
 * BLAKE3 digest. Every write goes to a temp file in `tmp/` and is renamed into place only once its
 * digest is verified, so a crash never leaves a broken object visible. Reads verify the digest;
 * an object that no longer matches is moved to `corrupt/` and reported.
 */
/**
 * Reads of local files at most this big are done synchronously (serving a chunk, reading a small
 * object through a mount): from the page cache an open, a read and a close take microseconds,
 * while as many thread-pool round trips cost ~0.1 ms of CPU each on a busy machine, two
 * cross-CPU wake-ups apiece (serving 5,000 small files to four receivers at once spent more CPU
 * on those hops than on anything else).
 */
export const SYNC_IO_MAX_BYTES = 64 * 1024;

export class ObjectStore {
  readonly root: string;
  private readonly objectsDir: string;
  private readonly tmpDir: string;
  private readonly corruptDir: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.objectsDir = path.join(this.root, 'objects');
    this.tmpDir = path.join(this.root, 'tmp');
    this.corruptDir = path.join(this.root, 'corrupt');
  }

  /** Creates the directories; safe to call from several processes at once. */
  async open(): Promise<this> {
    await Promise.all([this.objectsDir, this.tmpDir, this.corruptDir].map((d) => fsp.mkdir(d, { recursive: true })));
    return this;
  }

  objectPath(digest: Digest): string {
    const hex = digestHex(digest);
    return path.join(this.objectsDir, hex.slice(0, 2), hex.slice(2));
  }

  /** A fresh temp path on the store's file system (so `rename` into place is atomic). */
  tempPath(label = 'obj'): string {
    return path.join(this.tmpDir, `${label}.${process.pid}.${randomBytes(6).toString('hex')}`);
  }

  has(digest: Digest): boolean {
    return fs.existsSync(this.objectPath(digest));
  }

  /**
   * Which of `digests` the store holds now: one directory listing per shard asked about more than
   * a few times, instead of a stat per object (5,000 stats were ~10% of a 5,000-file `get`'s CPU).
   */
  hasMany(digests: readonly Digest[]): Set<Digest> {
    const byShard = new Map<string, Digest[]>();
    for (const d of digests) {
      const shard = digestHex(d).slice(0, 2);
      (byShard.get(shard) ?? byShard.set(shard, []).get(shard)!).push(d);
    }
    const held = new Set<Digest>();
    for (const [shard, ds] of byShard) {
      if (ds.length <= 4) {
        for (const d of ds) if (this.has(d)) held.add(d);
        continue;
      }
      let names: Set<string>;
      try {
        names = new Set(fs.readdirSync(path.join(this.objectsDir, shard)));
      } catch {
        continue; // no such shard yet: none of them is here
      }
      for (const d of ds) if (names.has(digestHex(d).slice(2))) held.add(d);
    }
    return held;
  }

  async size(digest: Digest): Promise<number | undefined> {
    try {
      return (await fsp.stat(this.objectPath(digest))).size;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Stores bytes held in memory (small objects: TOCs, tests). */
  async putBytes(bytes: Uint8Array, expected?: Digest): Promise<PutResult> {
    const digest = digestBytes(bytes);
    if (expected && expected !== digest) throw digestMismatch('object', expected, digest);
    if (this.has(digest)) return { digest, size: bytes.length, written: false };
    const tmp = this.tempPath();
    await fsp.writeFile(tmp, bytes, { mode: OBJECT_MODE });
    return { digest, size: bytes.length, written: await this.commit(tmp, digest) };
  }

  /**
   * Stores a small object held in memory whose digest the caller has verified: one write and a
   * rename (no hashing again, no mkdir or chmod unless needed). Synchronously: for a small object
   * these few system calls cost far less than as many thread-pool round trips (each two
   * cross-CPU wake-ups, ~0.1 ms of CPU on a busy machine).
   */
  async putVerified(bytes: Uint8Array, digest: Digest): Promise<boolean> {
    const dest = this.objectPath(digest);
    if (this.has(digest)) return false;
    const tmp = this.tempPath();
    try {
      fs.writeFileSync(tmp, bytes, { mode: OBJECT_MODE });
      try {
        fs.renameSync(tmp, dest);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
        fs.mkdirSync(path.dirname(dest), { recursive: true }); // the first object of its directory
        fs.renameSync(tmp, dest);
      }
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    return true;
  }

  /**
   * Stores a stream, hashing as it writes; the object appears only if the digest matches
   * `expected` (when given). Memory stays bounded whatever the size.
   */
  async putStream(source: Readable | AsyncIterable<Uint8Array>, expected?: Digest): Promise<PutResult> {
    const tmp = this.tempPath();
    const hasher = createHasher();
    let size = 0;
    const out = fs.createWriteStream(tmp, { mode: OBJECT_MODE });
    try {
      await pipeline(
        source,
        async function* (src: AsyncIterable<Uint8Array>) {
          for await (const chunk of src) {
            hasher.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        },
        out,
      );
      const digest = hasher.digest();
      if (expected && expected !== digest) throw digestMismatch('object', expected, digest);
      return { digest, size, written: await this.commit(tmp, digest) };
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  /** Copies a file into the store, verifying it against `expected`. */
  async putFile(file: string, expected?: Digest): Promise<PutResult> {
    if (expected && this.has(expected)) {
      const size = (await this.size(expected)) ?? 0;
      return { digest: expected, size, written: false };
    }
    return this.putStream(fs.createReadStream(file), expected);
  }

  /**
   * Moves a verified temp file into place. Returns false when another process stored the same
   * object first (the temp file is dropped: same digest, same bytes).
   */
  async commit(tmp: string, digest: Digest): Promise<boolean> {
    const dest = this.objectPath(digest);
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await fsp.chmod(tmp, OBJECT_MODE);
    if (this.has(digest)) {
      await fsp.rm(tmp, { force: true });
      return false;
    }
    await fsp.rename(tmp, dest);
    log.debug('stored', digest);
    return true;
  }

  /** Reads a whole object into memory, verified. For small objects (TOCs); stream large ones. */
  async read(digest: Digest): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(this.objectPath(digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new DftfsError('ERR_DFTFS_NOT_FOUND', `object ${digest} is not in the store at ${this.root}`, { cause: err });
      throw err;
    }
    const actual = digestBytes(bytes);
    if (actual !== digest) throw await this.quarantine(digest, actual);
    return bytes;
  }

  /** Re-hashes an object on disk; a mismatch quarantines it and throws ERR_DFTFS_CORRUPT_OBJECT. */
  async verify(digest: Digest): Promise<void> {
    const hasher = createHasher();
    try {
      for await (const chunk of fs.createReadStream(this.objectPath(digest))) hasher.update(chunk as Buffer);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new DftfsError('ERR_DFTFS_NOT_FOUND', `object ${digest} is not in the store`, { cause: err });
      throw err;
    }
    const actual = hasher.digest();
    if (actual !== digest) throw await this.quarantine(digest, actual);
  }

  /** Moves a corrupt object out of the way so the next reader fetches a good copy. */
  private async quarantine(digest: Digest, actual: Digest): Promise<DftfsError> {
    const to = path.join(this.corruptDir, `${digestHex(digest)}.${Date.now()}`);
    await fsp.rename(this.objectPath(digest), to).catch(() => undefined);
    log.debug('quarantined', digest, to);
    return new DftfsError('ERR_DFTFS_CORRUPT_OBJECT', `store object ${digest} is corrupt (its bytes hash to ${actual})`, {
      hint: `it was moved to ${to}; it will be fetched again when next needed`,
    });
  }

  /**
   * Makes `dest` a hardlink of the object (zero copy), replacing `dest` atomically. Falls back to
   * a copy across file systems.
   */
  async linkTo(digest: Digest, dest: string): Promise<'link' | 'copy'> {
    const src = this.objectPath(digest);
    const tmp = tempBeside(dest);
    let how: 'link' | 'copy' = 'link';
    try {
      await fsp.link(src, tmp);
    } catch (err) {
      if (errnoCode(err) !== 'EXDEV' && errnoCode(err) !== 'EPERM') throw err;
      await fsp.copyFile(src, tmp, fs.constants.COPYFILE_EXCL);
      how = 'copy';
    }
    try {
      await fsp.rename(tmp, dest);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    return how;
  }

  /** Removes temp files left by processes that died mid-write (older than `olderThanMs`). */
  async sweepTemp(olderThanMs = 60 * 60 * 1000): Promise<number> {
    let n = 0;
    const now = Date.now();
    for (const name of await fsp.readdir(this.tmpDir).catch(() => [] as string[])) {
      const p = path.join(this.tmpDir, name);
      const st = await fsp.stat(p).catch(() => undefined);
      if (st && now - st.mtimeMs > olderThanMs) {
        await fsp.rm(p, { force: true });
        n++;
      }
    }
    return n;
  }
}

