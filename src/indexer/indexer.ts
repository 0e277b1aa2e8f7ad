import fs from 'node:fs';
import { digestBytes, type Digest, type HashPool } from '../hash/index.js';
import { createLogger } from '../log.js';
import {
  MAX_CHUNK_BYTES, TOC_VERSION, formatModtimeMs, merkleDirs, symlinkStaysInside,
  type Toc, type TocChunk, type TocEntry,
} from '../toc/index.js';
import { loadIndexState, sameStat, saveIndexState, type IndexState, type StateRecord } from './index-state.js';
import { walkStat, walkTree, type WalkItem, type WalkStat } from './walk.js';
import type { IndexWarning } from './warnings.js';

const log = createLogger('index');

/** A file that changes under the hasher this many times in a row is skipped, not chased forever. */
const MAX_HASH_ATTEMPTS = 3;

const EMPTY_DIGEST = digestBytes(new Uint8Array(0));

/** Files hashed at once: enough to keep every pool thread busy and the disk queue full. */
const HASH_FILES_IN_FLIGHT = 64;

/** Files up to this size are hashed many to a pool job (a FilesJob)... */
const BATCH_FILE_MAX_BYTES = 256 * 1024;
/** ...at most this many files and bytes per job, so that every thread gets a share. */
const BATCH_FILES = 128;
const BATCH_BYTES = 4 * 1024 * 1024;

export interface IndexProgress {
  filesDone: number;
  filesToHash: number;
  bytesRead: number;
  bytesToHash: number;
}

export interface IndexOptions {
  pool: HashPool;
  /** Where the incremental state lives; without it every file is hashed. */
  statePath?: string;
  /**
   * The state kept in memory by a process that re-indexes one tree again and again (`serve`):
   * used instead of reading the state file (parsing 14 MB of it for a 100,000-file tree doubled
   * the publisher's peak memory), and replaced by this run's state. Still saved to `statePath`.
   */
  held?: { state?: IndexState };
  chunkBytes?: number;
  generation?: number;
  onWarning?: (w: IndexWarning) => void;
  onProgress?: (p: IndexProgress) => void;
  /** Test seam: runs after a file's bytes are hashed and before its stat is checked again. */
  afterHash?: (name: string, attempt: number) => void | Promise<void>;
}

export interface IndexStats {
  entries: number;
  files: number;
  bytesTotal: number;
  /** Bytes actually read from disk by this run (0 for a re-index with nothing changed). */
  bytesRead: number;
  filesHashed: number;
  filesReused: number;
  warnings: IndexWarning[];
  elapsedMs: number;
}

export interface IndexResult {
  toc: Toc;
  /** Each directory's Merkle node digest (the root's is the TOC's root): a publisher's TocView keeps them to apply deltas. */
  dirs: Map<string, Digest>;
  stats: IndexStats;
}

export interface Hashed {
  digest: Digest;
  chunks: TocChunk[];
  bytesRead: number;
}

/**
 * Indexes a tree: walks it, reuses digests of files whose (size, mtime, ctime, inode) did not
 * change since the last run, hashes the rest on the pool, and returns the TOC with its Merkle root.
 */
export async function indexTree(root: string, opts: IndexOptions): Promise<IndexResult> {
  const started = performance.now();
  const chunkBytes = opts.chunkBytes ?? MAX_CHUNK_BYTES;
  const warnings: IndexWarning[] = [];
  const warn = (w: IndexWarning) => {
    warnings.push(w);
    log.debug('warning', w.message);
    opts.onWarning?.(w);
  };
  const held = opts.held?.state?.chunkBytes === chunkBytes ? opts.held.state : undefined;
  const prev: IndexState = held ?? (opts.statePath
    ? await loadIndexState(opts.statePath, chunkBytes, warn)
    : { chunkBytes, files: new Map(), journalLines: 0, rewrite: true });

  const next: IndexState = { chunkBytes, files: new Map(), journalLines: prev.journalLines, rewrite: prev.rewrite };
  const firstOfInode = new Map<string, string>();
  const entries: Array<TocEntry | undefined> = [];
  const toHash: Array<{ item: WalkItem; slot: number }> = [];
  let filesReused = 0;
  for (const item of walkTree(root, warn)) {
    const { name, stat } = item;
    // Entry literals are written out whole: spreading a shared base object cost ~4 µs an entry.
    const mode = stat.mode & 0o7777;
    if (item.type === 'dir') {
      entries.push({ name, type: 'dir', mode, modtime: formatModtimeMs(stat.mtimeMs) });
    } else if (item.type === 'symlink') {
      if (!symlinkStaysInside(name, item.linkTarget!)) {
        warn({ path: name, code: 'SYMLINK_OUTSIDE', message: `${name}: symlink points outside the tree (${item.linkTarget}); kept as is` });
      }
      entries.push({ name, type: 'symlink', mode, modtime: formatModtimeMs(stat.mtimeMs), linkName: item.linkTarget! });
    } else {
      if (stat.nlink > 1) {
        const inode = `${stat.dev}:${stat.ino}`;
        const first = firstOfInode.get(inode);
        if (first !== undefined) {
          entries.push({ name, type: 'hardlink', mode, modtime: formatModtimeMs(stat.mtimeMs), linkName: first });
          continue;
        }
        firstOfInode.set(inode, name);
      }
      const rec = prev.files.get(name);
      if (rec && sameStat(rec, stat)) {
        filesReused++;
        // Same stat key, so same size, mtime and content: the last entry stands unless the mode changed.
        if (rec.entry?.mode !== mode || rec.entry.name !== name) {
          rec.entry = { name, type: 'reg', mode, modtime: formatModtimeMs(stat.mtimeMs), size: rec.size, digest: rec.digest, chunks: rec.chunks };
        }
        // Keyed by the entry's name, which lives on anyway: this walk's copy of it dies young.
        next.files.set(rec.entry.name, rec);
        entries.push(rec.entry);
      } else {
        toHash.push({ item, slot: entries.length });
        entries.push(undefined);
      }
    }
  }

  // Largest first: the long whole-file passes start early and the small files fill the gaps.
  toHash.sort((a, b) => b.item.stat.size - a.item.stat.size);
  const progress: IndexProgress = {
    filesDone: 0,
    filesToHash: toHash.length,
    bytesRead: 0,
    bytesToHash: toHash.reduce((n, h) => n + h.item.stat.size, 0),
  };
  let bytesRead = 0;
  type Job = { item: WalkItem; slot: number };
  /**
   * After a file's bytes are hashed: keeps the digest if the file did not change meanwhile.
   * Returns the file's new stat when it must be hashed again.
   */
  const settle = async ({ item, slot }: Job, st: WalkStat, hashed: Hashed, attempt: number): Promise<WalkStat | undefined> => {
    bytesRead += hashed.bytesRead;
    progress.bytesRead = bytesRead;
    opts.onProgress?.(progress);
    await opts.afterHash?.(item.name, attempt);
    let after: fs.Stats;
    try {
      after = fs.lstatSync(item.abs);
    } catch {
      warn({ path: item.name, code: 'VANISHED', message: `${item.name}: removed while being indexed; skipped` });
      return undefined;
    }
    if (after.isFile() && sameStat(st, after)) {
      const rec: StateRecord = { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, digest: hashed.digest, chunks: hashed.chunks };
      rec.entry = { name: item.name, type: 'reg', mode: st.mode & 0o7777, modtime: formatModtimeMs(st.mtimeMs), size: rec.size, digest: rec.digest, chunks: rec.chunks };
      next.files.set(item.name, rec);
      entries[slot] = rec.entry;
      return undefined;
    }
    if (!after.isFile() || attempt >= MAX_HASH_ATTEMPTS) {
      warn({ path: item.name, code: 'KEEPS_CHANGING', message: `${item.name}: changed while being hashed ${attempt} times; skipped` });
      return undefined;
    }
    log.debug('changed while hashing, again', item.name);
    return walkStat(after);
  };
  const unreadable = (item: WalkItem, code: string | undefined, message: string) =>
    warn({ path: item.name, code: code === 'ENOENT' ? 'VANISHED' : 'UNREADABLE', message: `${item.name}: ${message}; skipped` });
  const hashOne = async (job: Job, st = job.item.stat, firstAttempt = 1) => {
    for (let attempt = firstAttempt; ; attempt++) {
      let hashed: Hashed;
      try {
        hashed = await hashFile(opts.pool, job.item.abs, st.size, chunkBytes);
      } catch (err) {
        return unreadable(job.item, (err as NodeJS.ErrnoException).code, (err as Error).message);
      } finally {
        progress.filesDone += attempt === 1 ? 1 : 0;
      }
      const again = await settle(job, st, hashed, attempt);
      if (!again) return;
      st = again;
    }
  };
  // Small files go many to a pool job; a file that changed under its batch is hashed again alone.
  const hashBatch = async (batch: Job[]) => {
    const r = await opts.pool.submitFiles(batch.map((j) => ({ path: j.item.abs, length: j.item.stat.size })));
    for (const [i, job] of batch.entries()) {
      progress.filesDone++;
      const f = r.files[i]!;
      if ('error' in f) {
        unreadable(job.item, f.error.code, f.error.message);
        continue;
      }
      const digest = f.digest as Digest;
      const size = job.item.stat.size;
      const again = await settle(job, job.item.stat, { digest, chunks: [{ chunkOffset: 0, chunkSize: size, chunkDigest: digest }], bytesRead: f.bytesRead }, 1);
      if (again) await hashOne(job, again, 2);
    }
  };
  const batchable = (j: Job) => j.item.stat.size > 0 && j.item.stat.size <= Math.min(BATCH_FILE_MAX_BYTES, chunkBytes);
  const single = toHash.filter((j) => !batchable(j));
  const batches: Job[][] = [];
  let batch: Job[] = [];
  let batchBytes = 0;
  for (const j of toHash) {
    if (!batchable(j)) continue;
    if (batch.length >= BATCH_FILES || batchBytes + j.item.stat.size > BATCH_BYTES) {
      batches.push(batch);
      batch = [];
      batchBytes = 0;
    }
    batch.push(j);
    batchBytes += j.item.stat.size;
  }
  if (batch.length) batches.push(batch);
  // A bounded number of files (and batches) in flight: a promise, closure and job per file of a
  // 100,000-file tree at once cost hundreds of MB of heap for no speed (the pool has a thread per core).
  const drain = <T>(work: T[], inFlight: number, one: (w: T) => Promise<void>) => {
    let next = 0;
    return Promise.all(Array.from({ length: Math.min(work.length, inFlight) }, async () => {
      while (next < work.length) await one(work[next++]!);
    }));
  };
  await Promise.all([drain(single, HASH_FILES_IN_FLIGHT, (j) => hashOne(j)), drain(batches, opts.pool.threads * 2, hashBatch)]);

  const kept = entries.filter((e): e is TocEntry => e !== undefined);
  // A hardlink whose first name was skipped loses its target: drop it too rather than emit a bad TOC.
  const regNames = firstOfInode.size ? new Set(kept.filter((e) => e.type === 'reg').map((e) => e.name)) : undefined;
  const finalEntries = regNames ? kept.filter((e) => e.type !== 'hardlink' || regNames.has(e.linkName!)) : kept;
  if (opts.statePath) {
    const changes = new Map<string, StateRecord | null>();
    for (const [name, rec] of next.files) if (prev.files.get(name) !== rec) changes.set(name, rec);
    for (const name of prev.files.keys()) if (!next.files.has(name)) changes.set(name, null);
    if (changes.size > 0 || next.rewrite) await saveIndexState(opts.statePath, next, changes);
  }
  if (opts.held) opts.held.state = next;
  const dirs = merkleDirs(finalEntries);
  const toc: Toc = {
    version: TOC_VERSION,
    hashAlgorithm: 'blake3',
    chunkBytes,
    root: dirs.get('.')!,
    generation: opts.generation ?? 0,
    entries: finalEntries,
  };
  const files = finalEntries.filter((e) => e.type === 'reg');
  return {
    toc,
    dirs,
    stats: {
      entries: finalEntries.length,
      files: files.length,
      bytesTotal: files.reduce((n, e) => n + e.size!, 0),
      bytesRead,
      filesHashed: toHash.length,
      filesReused,
      warnings,
      elapsedMs: performance.now() - started,
    },
  };
}

/**
 * Digests one file. A file of one chunk is one job whose chunk digest is the file digest; a
 * larger one is a whole-file pass plus one job per chunk, so one big file still uses every core.
 */
export async function hashFile(pool: HashPool, file: string, size: number, chunkBytes: number = MAX_CHUNK_BYTES): Promise<Hashed> {
  if (size === 0) return { digest: EMPTY_DIGEST, chunks: [], bytesRead: 0 };
  const fail = (r: { error?: { code: string; message: string } }) => {
    if (r.error) throw Object.assign(new Error(r.error.message), { code: r.error.code });
  };
  if (size <= chunkBytes) {
    const r = await pool.submit({ path: file, offset: 0, length: size, chunkBytes, whole: false, chunks: true });
    fail(r);
    return { digest: r.chunkDigests[0] as Digest, chunks: [{ chunkOffset: 0, chunkSize: size, chunkDigest: r.chunkDigests[0] as Digest }], bytesRead: r.bytesRead };
  }
  const wholeP = pool.submit({ path: file, offset: 0, length: size, chunkBytes, whole: true, chunks: false });
  const chunkPs: Array<Promise<{ offset: number; r: Awaited<typeof wholeP> }>> = [];
  for (let offset = 0; offset < size; offset += chunkBytes) {
    const length = Math.min(chunkBytes, size - offset);
    chunkPs.push(pool.submit({ path: file, offset, length, chunkBytes, whole: false, chunks: true }).then((r) => ({ offset, r })));
  }
  const [whole, parts] = await Promise.all([wholeP, Promise.all(chunkPs)]);
  fail(whole);
  let bytesRead = whole.bytesRead;
  const chunks: TocChunk[] = [];
  for (const { offset, r } of parts) {
    fail(r);
    bytesRead += r.bytesRead;
    chunks.push({ chunkOffset: offset, chunkSize: Math.min(chunkBytes, size - offset), chunkDigest: r.chunkDigests[0] as Digest });
  }
  return { digest: whole.wholeDigest as Digest, chunks, bytesRead };
}
