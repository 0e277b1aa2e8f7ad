import fs from 'node:fs';
import path from 'node:path';
import { formatModtimeMs, merkleRoot, parentName, type Toc, type TocEntry } from '../toc/index.js';
import { sameStat, type StateRecord } from './index-state.js';

export interface TocUpdate {
  toc: Toc;
  /** Index-state records for the regular files updated (null: the path is gone). */
  records: Map<string, StateRecord | null>;
}

/**
 * The next TOC of a tree that changed only at `names` since `prev`: those paths and their
 * directories up to the root are stat'ed again, every other entry is kept, so the driver
 * publishing a job's outputs does not walk (or stat) the whole tree. Each regular file must have
 * a record in `known` whose stat key still matches (its content is the record's: it was written
 * from a verified object and not touched since); a file that has none, or that is a hard link,
 * returns undefined: the caller indexes the tree instead. The result is what a full index of the
 * tree would give, entry order aside (new entries come after their directory, at the end).
 */
export function updateToc(root: string, prev: Toc, names: Iterable<string>, known: ReadonlyMap<string, StateRecord>, generation: number): TocUpdate | undefined {
  const entries = new Map<string, TocEntry>(prev.entries.map((e) => [e.name, e]));
  const records = new Map<string, StateRecord | null>();
  const todo = new Set<string>();
  for (const name of names) {
    for (let n = name; ; n = parentName(n)) {
      todo.add(n);
      if (n === '.') break;
    }
  }
  // A hard link shares content with another name: which of them changed is the indexer's to sort out.
  if (prev.entries.some((e) => e.type === 'hardlink' && (todo.has(e.name) || todo.has(e.linkName!)))) return undefined;
  // Parents first, so a new directory's entry precedes its children's.
  const depth = (n: string) => (n === '.' ? 0 : n.split('/').length);
  for (const name of [...todo].sort((a, b) => depth(a) - depth(b))) {
    const abs = name === '.' ? root : path.join(root, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      removeTree(entries, name, records);
      continue;
    }
    const old = entries.get(name);
    const mode = st.mode & 0o7777;
    const modtime = formatModtimeMs(st.mtimeMs);
    let next: TocEntry;
    if (st.isDirectory()) next = { name, type: 'dir', mode, modtime };
    else if (st.isSymbolicLink()) next = { name, type: 'symlink', mode, modtime, linkName: fs.readlinkSync(abs) };
    else if (st.isFile()) {
      const k = known.get(name);
      if (!k || !sameStat(k, st) || st.nlink > 1 || !chunkedBy(k, prev.chunkBytes)) return undefined;
      next = { name, type: 'reg', mode, modtime, size: k.size, digest: k.digest, chunks: k.chunks };
      records.set(name, k);
    } else {
      return undefined; // a special file: the indexer's walk decides what to do with it
    }
    if (old && old.type === 'dir' && next.type !== 'dir') removeTree(entries, name, records);
    if (old && old.type !== 'dir' && old.type !== next.type) {
      entries.delete(name);
      if (old.type === 'reg') records.set(name, null);
    }
    entries.set(name, next);
  }
  const all = [...entries.values()];
  // A directory removed with a file another name is hard-linked to: index the tree instead.
  if (all.some((e) => e.type === 'hardlink' && entries.get(e.linkName!)?.type !== 'reg')) return undefined;
  const toc: Toc = { version: prev.version, hashAlgorithm: prev.hashAlgorithm, chunkBytes: prev.chunkBytes, root: merkleRoot(all), generation, entries: all };
  return { toc, records };
}

/** Chunks as this tree's index cuts them: the TOC's chunk size, every chunk full but the last. */
const chunkedBy = (k: StateRecord, chunkBytes: number) =>
  k.chunks.length === Math.ceil(k.size / chunkBytes) && k.chunks.every((c, i) => c.chunkOffset === i * chunkBytes && c.chunkSize === Math.min(chunkBytes, k.size - c.chunkOffset));

/** Drops `name` and, for a directory, everything under it. */
function removeTree(entries: Map<string, TocEntry>, name: string, records: Map<string, StateRecord | null>): void {
  const e = entries.get(name);
  if (!e) return;
  entries.delete(name);
  if (e.type === 'reg') records.set(name, null);
  if (e.type !== 'dir') return;
  const prefix = name === '.' ? '' : `${name}/`;
  for (const [n, c] of entries) {
    if (!n.startsWith(prefix)) continue;
    entries.delete(n);
    if (c.type === 'reg') records.set(n, null);
  }
}
