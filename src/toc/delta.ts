import type { Digest } from '../hash/index.js';
import type { Toc, TocEntry } from './types.js';

/**
 * What changed between two generations of a tree: the entries added or changed (parents before
 * children) and the names removed. It travels inside the TOC announcement, so a follower that
 * holds the base generation updates its view without fetching and parsing the whole TOC (a
 * 100,000-file TOC is ~30 MB of JSON and ~2 s of parsing per agent).
 */
export interface TocDelta {
  /** Merkle root of the generation the delta applies to. */
  baseRoot: Digest;
  set: TocEntry[];
  remove: string[];
}

/** Deltas with more changed paths than this are not sent (the announcement is one NATS message). */
export const MAX_DELTA_PATHS = 2000;

/** Two entries a reader cannot tell apart (a regular file's chunks follow from its digest). */
export const sameEntry = (a: TocEntry, b: TocEntry) => a === b ||
  a.type === b.type && a.mode === b.mode && a.modtime === b.modtime && a.size === b.size && a.digest === b.digest && a.linkName === b.linkName;

/** The delta from `prev` to `next`, or undefined when more than MAX_DELTA_PATHS paths changed. */
export function diffToc(prev: Toc, next: Toc): TocDelta | undefined {
  if (prev.chunkBytes !== next.chunkBytes) return undefined;
  const old = new Map(prev.entries.map((e) => [e.name, e]));
  const set: TocEntry[] = [];
  for (const e of next.entries) {
    const o = old.get(e.name);
    old.delete(e.name);
    if (o && sameEntry(o, e)) continue;
    set.push(e);
    if (set.length > MAX_DELTA_PATHS) return undefined;
  }
  const remove = [...old.keys()];
  if (set.length + remove.length > MAX_DELTA_PATHS) return undefined;
  return { baseRoot: prev.root, set, remove };
}
