import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { parentName } from '../toc/index.js';

/**
 * The writable layer of a mount: a real directory tree holding every file created or modified
 * through the mount, plus whiteouts (names deleted from the tree below). Both live in the mount's
 * cache directory, so writes survive a remount. Names are TOC names (`a/b`, root `.`).
 *
 * The set of upper names is kept in memory so that a getattr of a path the mount never wrote
 * costs a map lookup, not a syscall.
 */
export class UpperLayer {
  readonly dir: string;
  private readonly whiteoutFile: string;
  private readonly names = new Set<string>();
  private readonly whiteouts = new Set<string>();
  /** Write sequence: name -> the sequence number of its last change (written or deleted). */
  private readonly changes = new Map<string, { seq: number; deleted: boolean }>();
  private seq = 0;
  private readonly writers = new Map<string, number>();
  private saving: Promise<void> = Promise.resolve();

  constructor(cacheDir: string) {
    this.dir = path.join(cacheDir, 'upper');
    this.whiteoutFile = path.join(cacheDir, 'whiteouts.json');
  }

  /** Creates the directories and loads what an earlier mount left (files and whiteouts). */
  async open(): Promise<this> {
    await fsp.mkdir(this.dir, { recursive: true });
    const walk = async (rel: string): Promise<void> => {
      for (const d of await fsp.readdir(path.join(this.dir, rel), { withFileTypes: true })) {
        const name = rel ? `${rel}/${d.name}` : d.name;
        this.names.add(name);
        if (d.isDirectory()) await walk(name);
      }
    };
    await walk('');
    try {
      const list = JSON.parse(await fsp.readFile(this.whiteoutFile, 'utf8')) as unknown;
      if (Array.isArray(list)) for (const n of list) if (typeof n === 'string') this.whiteouts.add(n);
    } catch {
      // No whiteouts yet (or a torn file from a crash, which only ever loses deletions).
    }
    return this;
  }

  real(name: string): string {
    return name === '.' ? this.dir : path.join(this.dir, name);
  }

  /** True when the upper layer holds `name` (the root only once its own attributes were changed). */
  has(name: string): boolean {
    return this.names.has(name);
  }

  /** Upper names directly inside `dir` (no syscall for a directory the upper layer does not hold). */
  childrenOf(dir: string): string[] {
    if (dir !== '.' && !this.names.has(dir)) return [];
    try {
      return fs.readdirSync(this.real(dir));
    } catch {
      return [];
    }
  }

  /** True when `name` or one of its ancestors was deleted from the tree below. */
  hidden(name: string): boolean {
    if (this.whiteouts.size === 0) return false;
    for (let n = name; n !== '.'; n = parentName(n)) if (this.whiteouts.has(n)) return true;
    return false;
  }

  /** Records that `name` now exists in the upper layer (after the caller created it). */
  added(name: string): void {
    this.names.add(name);
    if (this.whiteouts.delete(name)) this.save();
    this.touch(name, false);
  }

  /** Records a change of content or metadata of an upper name. */
  touch(name: string, deleted: boolean): void {
    this.changes.set(name, { seq: ++this.seq, deleted });
  }

  /** Forgets an upper name (after the caller removed it); hides the lower one if there is one. */
  removed(name: string, hideLower: boolean): void {
    for (const n of [...this.names]) if (n === name || n.startsWith(name + '/')) this.names.delete(n);
    if (hideLower) {
      this.whiteouts.add(name);
      this.save();
    }
    this.touch(name, true);
  }

  /** Moves upper names under `from` to `to` (after the caller renamed the real path). */
  moved(from: string, to: string): void {
    for (const n of [...this.names]) {
      if (n === from || n.startsWith(from + '/')) {
        this.names.delete(n);
        const m = to + n.slice(from.length);
        this.names.add(m);
        this.touch(m, false);
      }
    }
    if (this.whiteouts.delete(to)) this.save();
  }

  /** Makes sure every ancestor directory of `name` exists in the upper layer. */
  async ensureParents(name: string, modeOf: (dir: string) => number | undefined): Promise<void> {
    const parents: string[] = [];
    for (let p = parentName(name); p !== '.' && !this.names.has(p); p = parentName(p)) parents.unshift(p);
    for (const p of parents) {
      await fsp.mkdir(this.real(p), { mode: modeOf(p) ?? 0o755 }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
      this.names.add(p);
    }
  }

  /** Counts open write handles: a file still open for writing is not a finished output. */
  openedForWrite(name: string): void {
    this.writers.set(name, (this.writers.get(name) ?? 0) + 1);
  }

  closedForWrite(name: string): void {
    const n = (this.writers.get(name) ?? 1) - 1;
    if (n > 0) this.writers.set(name, n);
    else this.writers.delete(name);
  }

  isOpenForWrite(name: string): boolean {
    return this.writers.has(name);
  }

  /** A point in the write history: `changedSince(mark())` later lists what changed after it. */
  mark(): number {
    return this.seq;
  }

  /** Names written or deleted after `mark`, the last change of each and its number. */
  changedSince(mark: number): Array<{ name: string; deleted: boolean; seq: number }> {
    const out: Array<{ name: string; deleted: boolean; seq: number }> = [];
    for (const [name, c] of this.changes) if (c.seq > mark) out.push({ name, deleted: c.deleted, seq: c.seq });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Drops an upper file that the tree below now holds identically (a job output taken home by the
   * driver), so a later generation's version of that path shows through again. `seq` is the
   * change number the file had when it was reported.
   */
  settle(name: string, seq: number): boolean {
    // Synchronous from check to removal, so no FUSE op can open the file in between.
    // Changed again since it was reported (a later job appended to it): it is not the driver's copy.
    if (!this.names.has(name) || this.changeSeq(name) !== seq || this.writers.has(name)) return false;
    const st = fs.lstatSync(this.real(name), { throwIfNoEntry: false });
    if (!st || st.isDirectory()) return false;
    fs.rmSync(this.real(name), { force: true });
    this.names.delete(name);
    return true;
  }

  /**
   * The upper file's lstat, undefined when it is not there (or cannot be read). Synchronous: the
   * layer is on this host's disk, where a stat takes microseconds and a thread-pool round trip far
   * more CPU (see SYNC_IO_MAX_BYTES); mounts stat upper files on every call on a file a job wrote.
   */
  stat(name: string): fs.Stats | undefined {
    try {
      return fs.lstatSync(this.real(name), { throwIfNoEntry: false });
    } catch {
      return undefined;
    }
  }

  /** The sequence number of the last change of `name` (0 if none). */
  changeSeq(name: string): number {
    return this.changes.get(name)?.seq ?? 0;
  }

  /** Forgets a whiteout (the driver deleted the path too). */
  unhide(name: string): void {
    if (this.whiteouts.delete(name)) this.save();
  }

  /** Persists the whiteouts with temp file + rename, one write at a time. */
  private save(): void {
    const snapshot = JSON.stringify([...this.whiteouts]);
    this.saving = this.saving.then(async () => {
      const tmp = `${this.whiteoutFile}.tmp`;
      await fsp.writeFile(tmp, snapshot);
      await fsp.rename(tmp, this.whiteoutFile);
    }).catch(() => undefined);
  }

  flush(): Promise<void> {
    return this.saving;
  }
}
