import fs from 'node:fs';
import path from 'node:path';
import { formatModtimeMs, parentName, sameEntry, type TocDelta, type TocEntry, type TocView } from '../toc/index.js';
import { sameStat, type StateRecord } from './index-state.js';

export interface TocUpdate {
  /** The changes from `prev`, parents before children (empty when nothing changed). */
  delta: TocDelta;
  /** Index-state records for the regular files updated (null: the path is gone). */
  records: Map<string, StateRecord | null>;
}

/**
 * What changed in a tree since the generation `prev`, which differs from the tree only at `names`:
 * those paths and their directories up to the root are stat'ed again, nothing else is looked at,
 * so the driver publishing a job's outputs neither walks the tree nor touches each of its
 * entries (`prev.apply(delta)` then hashes only the changed directories). Each regular file must
 * have a record in `known` whose stat key still matches (its content is the record's: it was
 * written from a verified object and not touched since); a file that has none, or that is a hard
 * link, returns undefined: the caller indexes the tree instead. Applied to `prev`, the delta gives
 * what a full index of the tree would, entry order aside.
 */
export function updateToc(root: string, prev: TocView, names: Iterable<string>, known: ReadonlyMap<string, StateRecord>): TocUpdate | undefined {
  const changes = new Map<string, TocEntry | null>();
  const lookup = (n: string): TocEntry | undefined => {
    const c = changes.get(n);
    return c === undefined ? prev.entry(n) : c ?? undefined;
  };
  const records = new Map<string, StateRecord | null>();
  const todo = new Set<string>();
  for (const name of names) {
    for (let n = name; ; n = parentName(n)) {
      todo.add(n);
      if (n === '.') break;
    }
  }
  // A hard link shares content with another name: which of them changed is the indexer's to sort out.
  if (prev.hardlinks().some((l) => todo.has(l) || todo.has(prev.entry(l)!.linkName!))) return undefined;
  /** Drops `name` and, for a directory, everything under it. */
  const removeTree = (name: string) => {
    const e = lookup(name);
    if (!e) return;
    changes.set(name, null);
    if (e.type === 'reg') records.set(name, null);
    if (e.type === 'dir') for (const kid of prev.children(name)) removeTree(name === '.' ? kid : `${name}/${kid}`);
  };
  // Parents first, so a new directory's entry precedes its children's.
  const depth = (n: string) => (n === '.' ? 0 : n.split('/').length);
  for (const name of [...todo].sort((a, b) => depth(a) - depth(b))) {
    const abs = name === '.' ? root : path.join(root, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      removeTree(name);
      continue;
    }
    const old = lookup(name);
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
    if (old && sameEntry(old, next)) continue;
    if (old?.type === 'dir' && next.type !== 'dir') removeTree(name);
    if (old?.type === 'reg' && next.type !== 'reg') records.set(name, null);
    changes.set(name, next);
  }
  // A directory removed with a file another name is hard-linked to: index the tree instead.
  if (prev.hardlinks().some((l) => lookup(l) && lookup(lookup(l)!.linkName!)?.type !== 'reg')) return undefined;
  const set: TocEntry[] = [];
  const remove: string[] = [];
  for (const [name, e] of changes) {
    if (e) set.push(e);
    else if (prev.entry(name)) remove.push(name);
  }
  return { delta: { baseRoot: prev.root , set, remove }, records };
}

/** Chunks as this tree's index cuts them: the TOC's chunk size, every chunk full but the last. */
const chunkedBy = (k: StateRecord, chunkBytes: number) =>
  k.chunks.length === Math.ceil(k.size / chunkBytes) && k.chunks.every((c, i) => c.chunkOffset === i * chunkBytes && c.chunkSize === Math.min(chunkBytes, k.size - c.chunkOffset));
