import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { descOf, type ObjectDesc } from '../agent/index.js';
import { createLogger } from '../log.js';
import { parentName, parseModtime, type TocEntry, type TocView } from '../toc/index.js';
import { fsError, toErrno } from './errno.js';
import type { LowerFile, ObjectSource } from './lower-file.js';
import { entryAttr, tocName, type Attr } from './entry-attr.js';
import type { UpperLayer } from './upper-layer.js';

const log = createLogger('fuse');
const { O_RDONLY, O_TRUNC, O_CREAT, O_RDWR } = fs.constants;
/** Access-mode bits of open flags (not exported by node:fs). */
const O_ACCMODE = 3;

/** Files at most this big are fetched when a file of their directory is first opened (see prefetchSiblings). */
export const DIR_PREFETCH_MAX_FILE_BYTES = 64 * 1024;
/** At most this many files are prefetched per directory. */
export const DIR_PREFETCH_MAX_FILES = 1024;

export interface FuseOpsOptions {
  /** The current lower tree (the driver's latest applied TOC generation). */
  view: () => TocView;
  upper: UpperLayer;
  objects: ObjectSource;
  readOnly?: boolean;
  /** Owner shown for files of the lower tree (they belong to another host). */
  uid: number;
  gid: number;
  /** Told of every regular file opened through the mount (dependency tracking of the make driver). */
  onOpen?: (name: string, write: boolean) => void;
}

type Handle =
  | { kind: 'upper'; name: string; fh: fsp.FileHandle; write: boolean }
  | { kind: 'lower'; name: string; file: LowerFile };

type Found = { where: 'upper'; st: fs.Stats } | { where: 'lower'; entry: TocEntry };

/** fuse-native's callback shape: `cb(code, value)`; read and write report their byte count as the code. */
type Callback = (code: number, value?: unknown) => void;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type FuseOps = Record<string, (...args: any[]) => void>;

function statAttr(st: fs.Stats): Attr {
  return {
    mode: st.mode, size: st.size, mtime: st.mtimeMs, atime: st.atimeMs, ctime: st.ctimeMs, nlink: st.nlink,
    uid: st.uid, gid: st.gid, blocks: st.blocks, blksize: st.blksize,
  };
}

/**
 * The FUSE operations of a mount, built from its lower tree (a TOC), its upper layer and where
 * remote bytes come from. Metadata is answered from memory; writes go to the upper layer
 * (copy-up first for a file of the lower tree); nothing throws across the FUSE boundary.
 */
export function createFuseOps(o: FuseOpsOptions): FuseOps {
  const { upper } = o;
  const handles = new Map<number, Handle>();
  let nextFd = 1;

  const lowerEntry = (name: string): TocEntry | undefined => (upper.hidden(name) ? undefined : o.view().get(name));

  async function find(name: string): Promise<Found | undefined> {
    if (upper.hidden(name)) return undefined;
    if (upper.has(name)) {
      const st = upper.stat(name);
      if (st) return { where: 'upper', st };
    }
    const entry = o.view().get(name);
    return entry ? { where: 'lower', entry } : undefined;
  }

  const isDir = (f: Found | undefined) => (f?.where === 'upper' ? f.st.isDirectory() : f?.entry.type === 'dir');

  async function mustFind(name: string): Promise<Found> {
    const f = await find(name);
    if (!f) throw fsError('ENOENT');
    return f;
  }

  function writable(): void {
    if (o.readOnly) throw fsError('EROFS');
  }

  async function parentMustBeDir(name: string): Promise<void> {
    if (!isDir(await find(parentName(name)))) throw fsError('ENOENT');
  }

  const lowerDirMode = (dir: string) => {
    const e = lowerEntry(dir);
    return e?.type === 'dir' ? e.mode : undefined;
  };

  /** Copies a path of the lower tree into the upper layer (before it is modified). */
  async function copyUp(name: string): Promise<void> {
    if (upper.has(name)) return;
    const e = lowerEntry(name);
    if (!e) throw fsError('ENOENT');
    await upper.ensureParents(name, lowerDirMode);
    const real = upper.real(name);
    const mtime = Number((parseModtime(e.modtime) ?? 0n) / 1_000_000n) / 1000;
    if (e.type === 'dir') {
      // The upper layer's own directory stands for the root; it takes the root's attributes.
      if (name === '.') await fsp.chmod(real, e.mode);
      else await fsp.mkdir(real, { mode: e.mode });
      await fsp.utimes(real, mtime, mtime);
    } else if (e.type === 'symlink') {
      await fsp.symlink(e.linkName ?? '', real);
      await fsp.lutimes(real, mtime, mtime);
    } else {
      // Into a temp name first: a crash mid-copy must not leave a truncated file in the upper layer.
      const tmp = path.join(path.dirname(upper.dir), `copyup.${randomBytes(6).toString('hex')}`);
      const src = await o.objects.whole(descOf(e));
      if (src) await fsp.copyFile(src, tmp);
      else await fsp.writeFile(tmp, '');
      await fsp.chmod(tmp, e.mode);
      await fsp.utimes(tmp, mtime, mtime);
      await fsp.rename(tmp, real);
    }
    upper.added(name);
  }

  /**
   * The first open of a file in a directory starts fetching the directory's other small files
   * (like NFS read-ahead, per directory): a tool that opens one file of a directory usually opens
   * its siblings next (cp, tar, compilers scanning include dirs), and fetching them together hides
   * one round trip per file. Not on listing: `find` or `ls -l` would fetch every file it passes.
   * Once per directory per TOC generation; bounded per directory.
   */
  let prefetchedIn = new Set<string>();
  let prefetchedView: TocView | undefined;
  function prefetchSiblings(name: string): void {
    const view = o.view();
    if (view !== prefetchedView) {
      prefetchedView = view;
      prefetchedIn = new Set();
    }
    const dir = parentName(name);
    if (prefetchedIn.has(dir)) return;
    prefetchedIn.add(dir);
    const siblings: ObjectDesc[] = [];
    for (const c of view.children(dir)) {
      if (siblings.length >= DIR_PREFETCH_MAX_FILES) break;
      const full = dir === '.' ? c : `${dir}/${c}`;
      const e = full === name || upper.has(full) ? undefined : lowerEntry(full);
      if (e?.type !== 'reg' || !e.digest || (e.size ?? 0) === 0 || (e.size ?? 0) > DIR_PREFETCH_MAX_FILE_BYTES) continue;
      siblings.push(descOf(e));
    }
    o.objects.prefetch(siblings);
  }

  async function children(name: string): Promise<string[]> {
    const f = await mustFind(name);
    if (!isDir(f)) throw fsError('ENOTDIR');
    const names = new Set<string>(upper.childrenOf(name));
    if (lowerEntry(name)?.type === 'dir') for (const c of o.view().children(name)) names.add(c);
    const full = (c: string) => (name === '.' ? c : `${name}/${c}`);
    return [...names].filter((c) => !upper.hidden(full(c)) && (upper.has(full(c)) || lowerEntry(full(c))));
  }

  function handle(fd: number): Handle {
    const h = handles.get(fd);
    if (!h) throw fsError('EBADF');
    return h;
  }

  function addHandle(h: Handle): number {
    const fd = nextFd++;
    handles.set(fd, h);
    return fd;
  }

  async function openUpper(name: string, flags: number, write: boolean): Promise<number> {
    const fh = await fsp.open(upper.real(name), flags & (O_ACCMODE | O_TRUNC));
    if (write && flags & O_TRUNC) upper.touch(name, false);
    if (write) upper.openedForWrite(name);
    return addHandle({ kind: 'upper', name, fh, write });
  }

  const impl: Record<string, (...args: never[]) => Promise<unknown>> = {
    async getattr(p: string) {
      const f = await mustFind(tocName(p));
      return f.where === 'upper' ? statAttr(f.st) : entryAttr(f.entry, o.uid, o.gid);
    },
    async fgetattr(p: string, fd: number) {
      const h = handles.get(fd);
      if (h?.kind === 'upper') return statAttr(await h.fh.stat());
      return impl.getattr!(p as never);
    },
    async access(p: string) {
      await mustFind(tocName(p));
    },
    async readdir(p: string) {
      return ['.', '..', ...await children(tocName(p))];
    },
    async readlink(p: string) {
      const f = await mustFind(tocName(p));
      if (f.where === 'upper') return fsp.readlink(upper.real(tocName(p)));
      if (f.entry.type !== 'symlink') throw fsError('EINVAL');
      return f.entry.linkName ?? '';
    },
    async open(p: string, flags: number) {
      const name = tocName(p);
      const write = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
      if (write) writable();
      let f = await mustFind(name);
      if (isDir(f)) throw fsError('EISDIR');
      o.onOpen?.(name, write);
      if (f.where === 'upper') {
        try {
          return await openUpper(name, flags, write);
        } catch (err) {
          // Settled meanwhile (the upper copy dropped for the driver's identical one): open that.
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || upper.has(name)) throw err;
          f = await mustFind(name);
          if (f.where === 'upper') throw err;
        }
      }
      if (write) {
        await copyUp(name);
        return openUpper(name, flags, write);
      }
      const desc = descOf(f.entry);
      o.objects.prefetch([desc]);
      prefetchSiblings(name);
      return addHandle({ kind: 'lower', name, file: o.objects.open(desc) });
    },
    async create(p: string, mode: number) {
      writable();
      const name = tocName(p);
      await parentMustBeDir(name);
      await upper.ensureParents(name, lowerDirMode);
      const fh = await fsp.open(upper.real(name), O_CREAT | O_RDWR | O_TRUNC, mode & 0o7777);
      upper.added(name);
      upper.openedForWrite(name);
      o.onOpen?.(name, true);
      return addHandle({ kind: 'upper', name, fh, write: true });
    },
    async read(_p: string, fd: number, buf: Buffer, len: number, pos: number) {
      const h = handle(fd);
      if (h.kind === 'lower') return h.file.read(buf, len, pos);
      return (await h.fh.read(buf, 0, len, pos)).bytesRead;
    },
    async write(_p: string, fd: number, buf: Buffer, len: number, pos: number) {
      // fuse-native lends `buf` only until the callback: copy it before the first await.
      const data = Buffer.from(buf.subarray(0, len));
      const h = handle(fd);
      if (h.kind !== 'upper' || !h.write) throw fsError('EBADF');
      const { bytesWritten } = await h.fh.write(data, 0, len, pos);
      upper.touch(h.name, false);
      return bytesWritten;
    },
    async release(_p: string, fd: number) {
      const h = handles.get(fd);
      handles.delete(fd);
      if (h?.kind === 'upper') {
        if (h.write) upper.closedForWrite(h.name);
        await h.fh.close();
      }
      else await h?.file.close();
    },
    async fsync(_p: string, _datasync: number, fd: number) {
      const h = handle(fd);
      if (h.kind === 'upper') await h.fh.sync();
    },
    async truncate(p: string, size: number) {
      writable();
      const name = tocName(p);
      await copyUp(name);
      await fsp.truncate(upper.real(name), size);
      upper.touch(name, false);
    },
    async ftruncate(_p: string, fd: number, size: number) {
      const h = handle(fd);
      if (h.kind !== 'upper' || !h.write) throw fsError('EBADF');
      await h.fh.truncate(size);
      upper.touch(h.name, false);
    },
    async unlink(p: string) {
      writable();
      const name = tocName(p);
      const f = await mustFind(name);
      if (isDir(f)) throw fsError('EISDIR');
      if (upper.has(name)) await fsp.rm(upper.real(name), { force: true });
      upper.removed(name, o.view().get(name) !== undefined);
    },
    async mkdir(p: string, mode: number) {
      writable();
      const name = tocName(p);
      if (await find(name)) throw fsError('EEXIST');
      await parentMustBeDir(name);
      await upper.ensureParents(name, lowerDirMode);
      await fsp.mkdir(upper.real(name), { mode: mode & 0o7777 });
      upper.added(name);
    },
    async rmdir(p: string) {
      writable();
      const name = tocName(p);
      if (name === '.') throw fsError('EBUSY');
      if ((await children(name)).length > 0) throw fsError('ENOTEMPTY');
      if (upper.has(name)) await fsp.rm(upper.real(name), { recursive: true, force: true });
      upper.removed(name, o.view().get(name)?.type === 'dir');
    },
    async rename(src: string, dest: string) {
      writable();
      const from = tocName(src);
      const to = tocName(dest);
      const f = await mustFind(from);
      await parentMustBeDir(to);
      // A directory of the lower tree cannot move as a whole (like overlayfs without redirect_dir):
      // EXDEV makes `mv` fall back to copy and delete.
      if (isDir(f) && (lowerEntry(from)?.type === 'dir' || lowerEntry(to)?.type === 'dir')) throw fsError('EXDEV');
      await copyUp(from);
      await upper.ensureParents(to, lowerDirMode);
      await fsp.rename(upper.real(from), upper.real(to));
      upper.moved(from, to);
      upper.removed(from, o.view().get(from) !== undefined);
    },
    async symlink(target: string, p: string) {
      writable();
      const name = tocName(p);
      if (await find(name)) throw fsError('EEXIST');
      await parentMustBeDir(name);
      await upper.ensureParents(name, lowerDirMode);
      await fsp.symlink(target, upper.real(name));
      upper.added(name);
    },
    async link(src: string, dest: string) {
      writable();
      const from = tocName(src);
      const to = tocName(dest);
      if (await find(to)) throw fsError('EEXIST');
      await parentMustBeDir(to);
      await copyUp(from);
      await upper.ensureParents(to, lowerDirMode);
      await fsp.link(upper.real(from), upper.real(to));
      upper.added(to);
    },
    async chmod(p: string, mode: number) {
      writable();
      const name = tocName(p);
      await copyUp(name);
      await fsp.chmod(upper.real(name), mode & 0o7777);
      upper.touch(name, false);
    },
    async chown(p: string, uid: number, gid: number) {
      writable();
      const name = tocName(p);
      await copyUp(name);
      await fsp.lchown(upper.real(name), uid, gid);
      upper.touch(name, false);
    },
    async utimens(p: string, atimeMs: number, mtimeMs: number) {
      writable();
      const name = tocName(p);
      await copyUp(name);
      // fuse-native 2.2.6 passes the access time twice (see native-notes/fuse.md), and UTIME_NOW
      // arrives as a time within the first seconds of 1970: both mean "now" for `touch`.
      const t = mtimeMs < 10_000 ? Date.now() / 1000 : mtimeMs / 1000;
      const a = atimeMs < 10_000 ? Date.now() / 1000 : atimeMs / 1000;
      await fsp.lutimes(upper.real(name), a, t);
      upper.touch(name, false);
    },
    async statfs() {
      const s = await fsp.statfs(upper.dir);
      return { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 };
    },
  };

  /** Byte counts are the result code of read and write; every other op answers (0, value). */
  const countOps = new Set(['read', 'write']);
  const ops: FuseOps = {};
  for (const [name, fn] of Object.entries(impl)) {
    ops[name] = (...args: unknown[]) => {
      const cb = args.pop() as Callback;
      (fn as (...a: unknown[]) => Promise<unknown>)(...args).then(
        (v) => (countOps.has(name) ? cb(v as number) : v === undefined ? cb(0) : cb(0, v)),
        (err: unknown) => {
          const errno = toErrno(err);
          log.debug(`${name} ${String(args[0])} failed:`, (err as Error)?.message ?? String(err));
          cb(errno);
        },
      );
    };
  }
  return ops;
}
