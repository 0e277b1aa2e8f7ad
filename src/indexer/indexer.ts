import fs from 'node:fs';
import { digestBytes, type Digest, type HashPool } from '../hash/index.js';
import { createLogger } from '../log.js';
import {
  MAX_CHUNK_BYTES, TOC_VERSION, formatModtimeMs, merkleRoot, symlinkStaysInside,
  type Toc, type TocChunk, type TocEntry,
} from '../toc/index.js';
import { loadIndexState, sameStat, saveIndexState, statKey, type IndexState, type StateRecord } from './index-state.js';
import { walkStat, walkTree, type WalkItem } from './walk.js';
import type { IndexWarning } from './warnings.js';

const log = createLogger('index');

/** A file that changes under the hasher this many times in a row is skipped, not chased forever. */
const MAX_HASH_ATTEMPTS = 3;

const EMPTY_DIGEST = digestBytes(new Uint8Array(0));

/** Files hashed at once: enough to keep every pool thread busy and the disk queue full. */
const HASH_FILES_IN_FLIGHT = 64;

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
  const prev: IndexState = opts.statePath
    ? await loadIndexState(opts.statePath, chunkBytes, warn)
    : { chunkBytes, files: new Map(), journalLines: 0, rewrite: true };
  const items = walkTree(root, warn);

  const next: IndexState = { chunkBytes, files: new Map(), journalLines: prev.journalLines, rewrite: prev.rewrite };
  const firstOfInode = new Map<string, string>();
  const entries: Array<TocEntry | undefined> = [];
  const toHash: Array<{ item: WalkItem; slot: number }> = [];
  let filesReused = 0;
  for (const item of items) {
    const { name, stat } = item;
    // Entry literals are written out whole: spreading a shared base object cost ~4 µs an entry.
    const mode = stat.mode & 0o7777;
    const modtime = formatModtimeMs(stat.mtimeMs);
    if (item.type === 'dir') {
      entries.push({ name, type: 'dir', mode, modtime });
    } else if (item.type === 'symlink') {
      if (!symlinkStaysInside(name, item.linkTarget!)) {
        warn({ path: name, code: 'SYMLINK_OUTSIDE', message: `${name}: symlink points outside the tree (${item.linkTarget}); kept as is` });
      }
      entries.push({ name, type: 'symlink', mode, modtime, linkName: item.linkTarget! });
    } else {
      if (stat.nlink > 1) {
        const inode = `${stat.dev}:${stat.ino}`;
        const first = firstOfInode.get(inode);
        if (first !== undefined) {
          entries.push({ name, type: 'hardlink', mode, modtime, linkName: first });
          continue;
        }
        firstOfInode.set(inode, name);
      }
      const rec = prev.files.get(name);
      if (rec && sameStat(rec, stat)) {
        filesReused++;
        next.files.set(name, rec);
        entries.push({ name, type: 'reg', mode, modtime, size: rec.size, digest: rec.digest, chunks: rec.chunks });
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
  // A bounded number of files in flight: a promise, closure and job per file of a 100,000-file
  // tree at once cost hundreds of MB of heap for no speed (the pool has a thread per core).
  let nextJob = 0;
  const hashOne = async ({ item, slot }: { item: WalkItem; slot: number }) => {
    let st = item.stat;
    for (let attempt = 1; ; attempt++) {
      let hashed: Hashed;
      try {
        hashed = await hashFile(opts.pool, item.abs, st.size, chunkBytes);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        warn({ path: item.name, code: code === 'ENOENT' ? 'VANISHED' : 'UNREADABLE', message: `${item.name}: ${(err as Error).message}; skipped` });
        return;
      } finally {
        progress.filesDone += attempt === 1 ? 1 : 0;
      }
      bytesRead += hashed.bytesRead;
      progress.bytesRead = bytesRead;
      opts.onProgress?.(progress);
      await opts.afterHash?.(item.name, attempt);
      let after: fs.Stats;
      try {
        after = fs.lstatSync(item.abs);
      } catch {
        warn({ path: item.name, code: 'VANISHED', message: `${item.name}: removed while being indexed; skipped` });
        return;
      }
      if (after.isFile() && sameStat(statKey(st), after)) {
        const rec: StateRecord = { ...statKey(st), digest: hashed.digest, chunks: hashed.chunks };
        next.files.set(item.name, rec);
        entries[slot] = {
          name: item.name, type: 'reg', mode: st.mode & 0o7777, modtime: formatModtimeMs(st.mtimeMs),
          size: rec.size, digest: rec.digest, chunks: rec.chunks,
        };
        return;
      }
      if (!after.isFile() || attempt >= MAX_HASH_ATTEMPTS) {
        warn({ path: item.name, code: 'KEEPS_CHANGING', message: `${item.name}: changed while being hashed ${attempt} times; skipped` });
        return;
      }
      log.debug('changed while hashing, again', item.name);
      st = walkStat(after);
    }
  };
  await Promise.all(Array.from({ length: Math.min(toHash.length, HASH_FILES_IN_FLIGHT) }, async () => {
    while (nextJob < toHash.length) await hashOne(toHash[nextJob++]!);
  }));

  const kept = entries.filter((e): e is TocEntry => e !== undefined);
  // A hardlink whose first name was skipped loses its target: drop it too rather than emit a bad TOC.
  const regNames = new Set(kept.filter((e) => e.type === 'reg').map((e) => e.name));
  const finalEntries = kept.filter((e) => e.type !== 'hardlink' || regNames.has(e.linkName!));
  if (opts.statePath) {
    const changes = new Map<string, StateRecord | null>();
    for (const [name, rec] of next.files) if (prev.files.get(name) !== rec) changes.set(name, rec);
    for (const name of prev.files.keys()) if (!next.files.has(name)) changes.set(name, null);
    if (changes.size > 0 || next.rewrite) await saveIndexState(opts.statePath, next, changes);
  }
  const toc: Toc = {
    version: TOC_VERSION,
    hashAlgorithm: 'blake3',
    chunkBytes,
    root: merkleRoot(finalEntries),
    generation: opts.generation ?? 0,
    entries: finalEntries,
  };
  const files = finalEntries.filter((e) => e.type === 'reg');
  return {
    toc,
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
