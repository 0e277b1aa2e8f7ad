import { parseModtime, type TocEntry } from '../toc/index.js';

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

/** A FUSE path (`/a/b`, `/`) as a TOC name (`a/b`, `.`). */
export const tocName = (fusePath: string): string => (fusePath === '/' || fusePath === '' ? '.' : fusePath.replace(/^\/+/, ''));
