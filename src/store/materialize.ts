import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { DftfsError } from '../errors.js';
import { parseModtime, resolveInside, symlinkStaysInside, type Toc, type TocEntry } from '../toc/index.js';
import type { ObjectStore } from './object-store.js';
import { tempBeside } from './temp-name.js';

/** Files placed at once: each is a few thread-pool round trips (copy, chmod, utimes, rename). */
const PLACE_PARALLEL = 8;

/** Read once: process.umask() cannot be read without setting it back. */
const UMASK = (() => {
  const m = process.umask(0);
  process.umask(m);
  return m;
})();

/** setuid and setgid are not carried over: a tree from elsewhere must not plant set-id programs. */
const KEPT_MODE_BITS = 0o1777;

export interface MaterializeOptions {
  /** Names left out (entries refused at import). */
  skip?: ReadonlySet<string>;
  /**
   * Files become hardlinks of their store objects (zero copy) instead of copies: read-only, with
   * the object's mode and times, since changing them would change the shared object.
   */
  link?: boolean;
}

/**
 * The entries of `toc` under directory `dir` ('.' for all), renamed relative to it. A hardlink to
 * a file outside `dir` becomes a regular file with that file's content.
 */
export function subtree(toc: Toc, dir: string): TocEntry[] {
  if (dir === '.') return toc.entries;
  const byName = new Map(toc.entries.map((e) => [e.name, e]));
  const inside = (n: string) => n === dir || n.startsWith(`${dir}/`);
  const rel = (n: string) => (n === dir ? '.' : n.slice(dir.length + 1));
  const out: TocEntry[] = [];
  for (const e of toc.entries) {
    if (!inside(e.name)) continue;
    if (e.type === 'hardlink' && !inside(e.linkName!)) {
      const target = byName.get(e.linkName!)!;
      out.push({ ...target, name: rel(e.name), mode: e.mode, modtime: e.modtime });
    } else {
      out.push({ ...e, name: rel(e.name), ...(e.type === 'hardlink' ? { linkName: rel(e.linkName!) } : {}) });
    }
  }
  return out;
}

/**
 * Writes tree entries (TOC order: a directory before its contents) into `dest`: `open` makes the
 * directories, `writeSync` places a file whose bytes the caller holds, `finish` places the other files
 * out of the store, then links and directory modes and times. A crash leaves no half-written file
 * visible: a `dest` that does not exist yet is built whole under a temp name beside it and renamed
 * into place by `finish` (`abort` removes it); into an existing `dest`, every file is written under
 * a temp name and renamed into place (5,000 small files: a rename each, ~10% of a `get`'s CPU).
 * Files are copies (reflinks where the file system can) unless `link`: a hardlink into the store
 * would let an edit or chmod of the tree corrupt it. A symlink pointing outside the tree is not
 * written; its name comes back in `refused`.
 */
export class TreeWriter {
  private readonly dirs: TocEntry[] = [];
  private readonly files = new Map<string, TocEntry>();
  private readonly links: TocEntry[] = [];
  /** A fresh tree is complete under its temp name: kept even if the rename into place fails. */
  private whole = false;
  /** Temp files of copies being made into an existing `dest` (abort removes them). */
  private readonly temps = new Set<string>();

  /** `root` is where files are written; with `finalDest`, a temp directory renamed to it at the end. */
  private constructor(private readonly root: string, private readonly finalDest?: string) {}

  static async open(entries: readonly TocEntry[], dest: string, skip: ReadonlySet<string> = new Set()): Promise<TreeWriter> {
    const fresh = await fsp.lstat(dest).then(() => false, (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return true;
      throw err;
    });
    let w: TreeWriter;
    if (fresh) {
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      const final = path.join(await fsp.realpath(path.dirname(dest)), path.basename(dest));
      const tmp = tempBeside(final);
      await fsp.mkdir(tmp, { mode: 0o700 });
      w = new TreeWriter(tmp, final);
    } else {
      await fsp.mkdir(dest, { recursive: true });
      w = new TreeWriter(await fsp.realpath(dest));
    }
    for (const e of entries) {
      if (skip.has(e.name) || (e.type === 'hardlink' && skip.has(e.linkName!))) continue;
      if (e.type === 'dir') {
        // Owner-writable while it is filled; its own mode is set last.
        await fsp.mkdir(w.at(e.name), { recursive: true, mode: 0o700 });
        w.dirs.push(e);
      } else if (e.type === 'reg') w.files.set(e.name, e);
      else w.links.push(e);
    }
    return w;
  }

  private at(name: string): string {
    return name === '.' ? this.root : resolveInside(this.root, name);
  }

  /**
   * Writes a file from bytes the caller verified against its entry's digest. Synchronously: for a
   * small file, its six system calls in one go cost a fraction of the CPU of six thread-pool round
   * trips (5,000 files from four `get`s at once kept both cores busy with those hops), and the
   * caller (a batch) only waits for the network meanwhile.
   */
  writeSync(e: TocEntry, bytes: Uint8Array): void {
    this.files.delete(e.name);
    const target = this.at(e.name);
    // In a fresh tree's temp directory the file is written where it goes: nobody sees it before the rename of the whole.
    const tmp = this.finalDest ? target : tempBeside(target);
    const mode = e.mode & KEPT_MODE_BITS;
    try {
      const fd = fs.openSync(tmp, 'wx', mode);
      try {
        fs.writeSync(fd, bytes);
        if (mode & UMASK) fs.fchmodSync(fd, mode); // bits the umask cleared
        const sec = seconds(e.modtime);
        fs.futimesSync(fd, sec, sec);
      } finally {
        fs.closeSync(fd);
      }
      if (tmp !== target) fs.renameSync(tmp, target);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
  }

  async finish(store: ObjectStore, link = false): Promise<{ refused: Array<{ name: string; reason: string }> }> {
    const files = [...this.files.values()];
    this.files.clear();
    let next = 0;
    const lane = async () => {
      while (next < files.length) await this.placeFile(files[next++]!, store, link);
    };
    await Promise.all(Array.from({ length: Math.min(PLACE_PARALLEL, files.length) }, lane));
    const refused: Array<{ name: string; reason: string }> = [];
    for (const e of this.links) {
      const target = this.at(e.name);
      if (e.type === 'hardlink') {
        await fsp.rm(target, { force: true });
        await fsp.link(this.at(e.linkName!), target);
      } else if (!symlinkStaysInside(e.name, e.linkName!)) {
        refused.push({ name: e.name, reason: `symlink to ${JSON.stringify(e.linkName)} points outside the tree` });
      } else {
        await fsp.rm(target, { force: true });
        await fsp.symlink(e.linkName!, target);
      }
    }
    // Directory modes and times last: creating their children changed the times.
    for (const d of this.dirs.reverse()) {
      await fsp.chmod(this.at(d.name), d.mode & KEPT_MODE_BITS);
      await setTimes(this.at(d.name), d.modtime);
    }
    if (this.finalDest) {
      this.whole = true;
      // Over nothing, or over an empty directory made meanwhile; anything else there is kept.
      await fsp.rename(this.root, this.finalDest).catch((err: NodeJS.ErrnoException) => {
        throw new DftfsError('ERR_DFTFS_IO', `${this.finalDest}: appeared while it was being fetched (${err.code}); the fetched tree is at ${this.root}`);
      });
    }
    return { refused };
  }

  /**
   * Removes a fresh tree's temp directory (the fetch failed, or was interrupted: synchronous, so a
   * signal handler can call it); into an existing `dest`, the files placed so far stay, and the
   * temp files of those still being copied go.
   */
  abort(): void {
    if (this.finalDest && !this.whole) fs.rmSync(this.root, { recursive: true, force: true });
    // Into an existing `dest`: the temp files of copies still being made.
    for (const tmp of this.temps) fs.rmSync(tmp, { force: true });
    this.temps.clear();
  }

  private async placeFile(e: TocEntry, store: ObjectStore, link: boolean): Promise<void> {
    if (e.size && !store.has(e.digest!)) throw new DftfsError('ERR_DFTFS_NOT_FOUND', `${e.name}: object ${e.digest} is not in the store at ${store.root}`);
    const fill = async (file: string) => {
      if (link && e.size) return fsp.link(store.objectPath(e.digest!), file);
      if (e.size) await fsp.copyFile(store.objectPath(e.digest!), file, fs.constants.COPYFILE_FICLONE | fs.constants.COPYFILE_EXCL);
      else await fsp.writeFile(file, '', { flag: 'wx' });
      await fsp.chmod(file, e.mode & KEPT_MODE_BITS);
      await setTimes(file, e.modtime);
    };
    // In a fresh tree's temp directory, straight to its name (as writeSync).
    if (this.finalDest) await fill(this.at(e.name));
    else await atomically(this.at(e.name), fill, this.temps);
  }
}

/** Writes tree entries out of the store into `dest` (see TreeWriter). */
export async function materialize(entries: readonly TocEntry[], store: ObjectStore, dest: string, opts: MaterializeOptions = {}) {
  const w = await TreeWriter.open(entries, dest, opts.skip);
  try {
    return await w.finish(store, opts.link);
  } catch (err) {
    w.abort();
    throw err;
  }
}

/** Makes `target` with `fill(tmp)` under a temp name beside it, then renames it into place. */
async function atomically(target: string, fill: (tmp: string) => Promise<unknown>, temps: Set<string>): Promise<void> {
  const tmp = tempBeside(target);
  temps.add(tmp);
  try {
    await fill(tmp);
    await fsp.rename(tmp, target);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  } finally {
    temps.delete(tmp);
  }
}

const seconds = (modtime: string) => Number(parseModtime(modtime)!) / 1e9;

async function setTimes(p: string, modtime: string): Promise<void> {
  await fsp.utimes(p, seconds(modtime), seconds(modtime));
}
