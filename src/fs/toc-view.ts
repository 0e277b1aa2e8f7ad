import { malformedToc } from '../errors.js';
import type { Digest } from '../hash/index.js';
import {
  baseName, checkEntry, checkEntryName, dirDigest, merkleDirs, parentName, parseModtime, type Toc, type TocEntry,
} from '../toc/index.js';

/** Attributes of one path, in the shape fuse-native's getattr wants (times in ms). */
export interface Attr {
  mode: number;
  size: number;
  mtime: number;
  atime: number;
  ctime: number;
  nlink: number;
  uid: number;
  gid: number;
  blocks: number;
  blksize: number;
}

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
const BLOCK_BYTES = 512;

const modtimeMs = (s: string): number => {
  const ns = parseModtime(s);
  return ns === undefined ? 0 : Number(ns / 1_000_000n);
};

/** Attributes of a TOC entry, owned by `uid`/`gid` (the mount's user: the tree's owner is another host's). */
export function entryAttr(e: TocEntry, uid: number, gid: number): Attr {
  const t = modtimeMs(e.modtime);
  const type = e.type === 'dir' ? S_IFDIR : e.type === 'symlink' ? S_IFLNK : S_IFREG;
  const size = e.type === 'reg' ? e.size ?? 0 : e.type === 'symlink' ? Buffer.byteLength(e.linkName ?? '') : 4096;
  return {
    mode: type | (e.mode & 0o7777), size, mtime: t, atime: t, ctime: t, nlink: e.type === 'dir' ? 2 : 1,
    uid, gid, blocks: Math.ceil(size / BLOCK_BYTES), blksize: 4096,
  };
}

/**
 * One TOC generation seen as a tree: entry by name, children by directory. Built once per
 * generation so getattr and readdir are map lookups (no network round trip, unlike NFS).
 * Hardlink entries resolve to the regular file they share content with.
 */
export class TocView {
  /** Merkle node digest per directory: handed over by decodeTocDirs, or computed on the first delta. */
  private dirs: Map<string, Digest> | undefined;

  private constructor(
    readonly generation: number,
    readonly root: string,
    readonly chunkBytes: number,
    private readonly byName: Map<string, TocEntry>,
    private readonly kids: Map<string, string[]>,
    /** The TOC had no `.` entry (only hand-made ones): its stand-in is not part of the Merkle tree. */
    private readonly implicitRoot: boolean,
    dirs: Map<string, Digest> | undefined,
  ) {
    this.dirs = dirs;
  }

  /** The view of a validated TOC; `dirs` are its directories' Merkle digests when already computed. */
  static of(toc: Toc, dirs?: Map<string, Digest>): TocView {
    const byName = new Map<string, TocEntry>();
    const kids = new Map<string, string[]>();
    for (const e of toc.entries) byName.set(e.name, e);
    const implicitRoot = !byName.has('.');
    if (implicitRoot) byName.set('.', { name: '.', type: 'dir', mode: 0o755, modtime: '1970-01-01T00:00:00.000000000Z' });
    for (const e of toc.entries) {
      if (e.name === '.') continue;
      const p = parentName(e.name);
      let list = kids.get(p);
      if (!list) kids.set(p, (list = []));
      list.push(baseName(e.name));
    }
    return new TocView(toc.generation, toc.root, toc.chunkBytes, byName, kids, implicitRoot, dirs);
  }

  static empty(): TocView {
    return TocView.of({ version: 1, hashAlgorithm: 'blake3', chunkBytes: 0, root: 'blake3:', generation: -1, entries: [] });
  }

  /**
   * The next generation: this view with a delta applied (see src/toc/delta.ts). Every entry is
   * checked as in a TOC, only the directories on changed paths are hashed again, and the result
   * must have the announced root; anything else throws ERR_DFTFS_MALFORMED_TOC (the follower then
   * fetches the whole TOC). This view is left unchanged.
   */
  withDelta(raw: unknown, root: string, generation: number): TocView {
    const d = raw as Record<string, unknown>;
    if (!d || typeof d !== 'object' || d.baseRoot !== this.root || this.implicitRoot) throw malformedToc('delta does not apply to this generation');
    if (!Array.isArray(d.set) || !Array.isArray(d.remove) || !d.remove.every((n) => typeof n === 'string')) throw malformedToc('delta: bad set or remove');
    this.dirs ??= merkleDirs([...this.byName.values()]);
    const dirs = new Map(this.dirs);
    const byName = new Map(this.byName);
    const kids = new Map(this.kids);
    const owned = new Set<string>();
    const kidsOf = (dir: string): string[] => {
      if (!owned.has(dir)) {
        owned.add(dir);
        kids.set(dir, [...(kids.get(dir) ?? [])]);
      }
      return kids.get(dir)!;
    };
    const dirty = new Set<string>();
    const touch = (name: string) => {
      for (let n = name; ; n = parentName(n)) {
        dirty.add(n);
        if (n === '.') break;
      }
    };
    for (const name of d.remove as string[]) {
      checkEntryName(name);
      const e = byName.get(name);
      if (!e || name === '.') throw malformedToc(`delta removes ${JSON.stringify(name)}, which is not there`);
      byName.delete(name);
      const siblings = kidsOf(parentName(name));
      siblings.splice(siblings.indexOf(baseName(name)), 1);
      if (e.type === 'dir') dirs.delete(name);
      touch(parentName(name));
    }
    for (const e of d.set as unknown[]) {
      checkEntry(e, this.chunkBytes, (n) => byName.get(n));
      const old = byName.get(e.name);
      if (!old && e.name !== '.') kidsOf(parentName(e.name)).push(baseName(e.name));
      if (old?.type === 'dir' && e.type !== 'dir') {
        if ((kids.get(e.name) ?? []).length > 0) throw malformedToc(`delta turns ${JSON.stringify(e.name)} into a ${e.type} with entries under it`);
        dirs.delete(e.name);
      }
      byName.set(e.name, e);
      touch(e.type === 'dir' ? e.name : parentName(e.name));
    }
    for (const [name, list] of kids) {
      if (list.length > 0 && byName.get(name)?.type !== 'dir') throw malformedToc(`delta leaves entries under ${JSON.stringify(name)}, which is not a directory`);
    }
    for (const h of byName.values()) {
      if (h.type === 'hardlink' && byName.get(h.linkName ?? '')?.type !== 'reg') throw malformedToc(`delta leaves hard link ${JSON.stringify(h.name)} without its file`);
    }
    // Deepest first: a directory's digest needs its subdirectories'.
    const depth = (n: string) => (n === '.' ? 0 : n.split('/').length);
    for (const dir of [...dirty].sort((a, b) => depth(b) - depth(a))) {
      if (byName.get(dir)?.type !== 'dir') continue; // removed, or no longer a directory
      const entry = byName.get(dir)!;
      const children = (kids.get(dir) ?? []).map((c) => byName.get(dir === '.' ? c : `${dir}/${c}`)!);
      dirs.set(dir, dirDigest(entry, children, dirs));
    }
    if (dirs.get('.') !== root) throw malformedToc('delta does not give the announced root');
    return new TocView(generation, root, this.chunkBytes, byName, kids, false, dirs);
  }

  /** The entry at `name`, a hardlink resolved to its target (keeping its own name). */
  get(name: string): TocEntry | undefined {
    const e = this.byName.get(name);
    if (e?.type !== 'hardlink') return e;
    const target = this.byName.get(e.linkName ?? '');
    return target?.type === 'reg' ? { ...target, name } : undefined;
  }

  children(dir: string): string[] {
    return this.kids.get(dir) ?? [];
  }

  /** Every name in the view (for tests and the make driver's diffing). */
  names(): IterableIterator<string> {
    return this.byName.keys();
  }
}

/** A FUSE path (`/a/b`, `/`) as a TOC name (`a/b`, `.`). */
export const tocName = (fusePath: string): string => (fusePath === '/' || fusePath === '' ? '.' : fusePath.replace(/^\/+/, ''));
