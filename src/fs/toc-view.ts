import { parseModtime, parentName, baseName, type Toc, type TocEntry } from '../toc/index.js';

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
  readonly generation: number;
  readonly root: string;
  private readonly byName = new Map<string, TocEntry>();
  private readonly kids = new Map<string, string[]>();

  constructor(readonly toc: Toc) {
    this.generation = toc.generation;
    this.root = toc.root;
    for (const e of toc.entries) this.byName.set(e.name, e);
    if (!this.byName.has('.')) this.byName.set('.', { name: '.', type: 'dir', mode: 0o755, modtime: '1970-01-01T00:00:00.000000000Z' });
    for (const e of toc.entries) {
      if (e.name === '.') continue;
      const p = parentName(e.name);
      let list = this.kids.get(p);
      if (!list) this.kids.set(p, (list = []));
      list.push(baseName(e.name));
    }
  }

  static empty(): TocView {
    return new TocView({ version: 1, hashAlgorithm: 'blake3', chunkBytes: 0, root: 'blake3:', generation: -1, entries: [] });
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
