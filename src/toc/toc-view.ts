import { malformedToc } from '../errors.js';
import type { Digest } from '../hash/index.js';
import { checkEntry } from './codec.js';
import { dirDigest, merkleDirs } from './merkle.js';
import { baseName, checkEntryName, parentName } from './paths.js';
import { TOC_VERSION, type Toc, type TocEntry } from './types.js';

/** Changed names a view carries on top of the map it shares with older generations, before it makes a map of its own. */
const OVERLAY_MAX_NAMES = 8192;

/**
 * Entries by name: a map shared with earlier generations, and the names changed since (null:
 * removed). A delta of a few paths then costs a copy of those few, not of the whole map: copying
 * a 100,000-entry Map took 40-70 ms, and every agent of a cluster does it for every generation.
 */
class EntryMap {
  constructor(private readonly base: ReadonlyMap<string, TocEntry>, private readonly over: ReadonlyMap<string, TocEntry | null>) {}

  static of(base: Map<string, TocEntry>): EntryMap {
    return new EntryMap(base, new Map());
  }

  get(name: string): TocEntry | undefined {
    const o = this.over.get(name);
    return o === undefined ? this.base.get(name) : o ?? undefined;
  }

  /**
   * In the order of the TOC this map was made from, with each changed entry in its place and each
   * new one at the end (the order a TOC updated by a Map of its entries has): a directory keeps
   * coming before its entries, a file before the names hard-linked to it.
   */
  *values(): IterableIterator<TocEntry> {
    for (const [n, e] of this.base) {
      const o = this.over.get(n);
      if (o === undefined) yield e;
      else if (o) yield o;
    }
    for (const [n, e] of this.over) if (e && !this.base.has(n)) yield e;
  }

  *keys(): IterableIterator<string> {
    for (const e of this.values()) yield e.name;
  }

  /** This map with `changes` on top (entries set, or null for removed), sharing what it can. */
  with(changes: ReadonlyMap<string, TocEntry | null>): EntryMap {
    const over = new Map(this.over);
    for (const [n, e] of changes) {
      if (e === null && !this.base.has(n)) over.delete(n);
      else over.set(n, e);
    }
    if (over.size <= OVERLAY_MAX_NAMES) return new EntryMap(this.base, over);
    const base = new Map(this.base);
    for (const [n, e] of over) {
      if (e) base.set(n, e);
      else base.delete(n);
    }
    return EntryMap.of(base);
  }
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
    readonly root: Digest,
    readonly chunkBytes: number,
    private readonly byName: EntryMap,
    private readonly kids: Map<string, string[]>,
    /** The TOC had no `.` entry (only hand-made ones): its stand-in is not part of the Merkle tree. */
    private readonly implicitRoot: boolean,
    dirs: Map<string, Digest> | undefined,
    /** Names of the hardlink entries (a delta must leave each with its file). */
    private readonly links: readonly string[],
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
    const links = toc.entries.filter((e) => e.type === 'hardlink').map((e) => e.name);
    return new TocView(toc.generation, toc.root, toc.chunkBytes, EntryMap.of(byName), kids, implicitRoot, dirs, links);
  }

  static empty(): TocView {
    return TocView.of({ version: 1, hashAlgorithm: 'blake3', chunkBytes: 0, root: 'blake3:' as Digest, generation: -1, entries: [] });
  }

  /**
   * The next generation: this view with a delta applied (see src/toc/delta.ts). Every entry is
   * checked as in a TOC, only the directories on changed paths are hashed again, and the result
   * must have the announced root; anything else throws ERR_DFTFS_MALFORMED_TOC (the follower then
   * fetches the whole TOC). This view is left unchanged.
   */
  withDelta(raw: unknown, root: string, generation: number): TocView {
    const next = this.apply(raw, generation);
    if (next.root !== root) throw malformedToc('delta does not give the announced root');
    return next;
  }

  /**
   * The next generation with a delta applied, its root computed (withDelta, less the check against
   * an announced root): how a publisher makes a generation from the paths a job changed, hashing
   * only their directories instead of the whole tree.
   */
  apply(raw: unknown, generation: number): TocView {
    const d = raw as Record<string, unknown>;
    if (!d || typeof d !== 'object' || d.baseRoot !== this.root || this.implicitRoot) throw malformedToc('delta does not apply to this generation');
    if (!Array.isArray(d.set) || !Array.isArray(d.remove) || !d.remove.every((n) => typeof n === 'string')) throw malformedToc('delta: bad set or remove');
    this.dirs ??= merkleDirs([...this.byName.values()]);
    const dirs = new Map(this.dirs);
    const changes = new Map<string, TocEntry | null>();
    const lookup = (n: string): TocEntry | undefined => {
      const c = changes.get(n);
      return c === undefined ? this.byName.get(n) : c ?? undefined;
    };
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
      const e = lookup(name);
      if (!e || name === '.') throw malformedToc(`delta removes ${JSON.stringify(name)}, which is not there`);
      changes.set(name, null);
      const siblings = kidsOf(parentName(name));
      siblings.splice(siblings.indexOf(baseName(name)), 1);
      if (e.type === 'dir') dirs.delete(name);
      touch(parentName(name));
    }
    for (const e of d.set as unknown[]) {
      checkEntry(e, this.chunkBytes, lookup);
      const old = lookup(e.name);
      if (!old && e.name !== '.') kidsOf(parentName(e.name)).push(baseName(e.name));
      if (old?.type === 'dir' && e.type !== 'dir') {
        if ((kids.get(e.name) ?? []).length > 0) throw malformedToc(`delta turns ${JSON.stringify(e.name)} into a ${e.type} with entries under it`);
        dirs.delete(e.name);
      }
      changes.set(e.name, e);
      touch(e.type === 'dir' ? e.name : parentName(e.name));
    }
    const byName = this.byName.with(changes);
    for (const [name, list] of kids) {
      if (list.length > 0 && byName.get(name)?.type !== 'dir') throw malformedToc(`delta leaves entries under ${JSON.stringify(name)}, which is not a directory`);
    }
    const links = [...new Set([...this.links, ...[...changes.values()].filter((e) => e?.type === 'hardlink').map((e) => e!.name)])]
      .filter((n) => byName.get(n)?.type === 'hardlink');
    for (const n of links) {
      if (byName.get(byName.get(n)!.linkName ?? '')?.type !== 'reg') throw malformedToc(`delta leaves hard link ${JSON.stringify(n)} without its file`);
    }
    // Deepest first: a directory's digest needs its subdirectories'.
    const depth = (n: string) => (n === '.' ? 0 : n.split('/').length);
    for (const dir of [...dirty].sort((a, b) => depth(b) - depth(a))) {
      if (byName.get(dir)?.type !== 'dir') continue; // removed, or no longer a directory
      const entry = byName.get(dir)!;
      const children = (kids.get(dir) ?? []).map((c) => byName.get(dir === '.' ? c : `${dir}/${c}`)!);
      dirs.set(dir, dirDigest(entry, children, dirs));
    }
    return new TocView(generation, dirs.get('.')!, this.chunkBytes, byName, kids, false, dirs, links);
  }

  /** The entry at `name` as the TOC has it (a hardlink is not resolved). */
  entry(name: string): TocEntry | undefined {
    return this.byName.get(name);
  }

  /** Names of the hardlink entries. */
  hardlinks(): readonly string[] {
    return this.links;
  }

  /**
   * The TOC of this generation, its entries in a valid order (see EntryMap.values): what a
   * publisher stores when someone asks for the whole TOC of a generation it made from a delta.
   */
  toToc(): Toc {
    const entries = [...this.byName.values()];
    return { version: TOC_VERSION, hashAlgorithm: 'blake3', chunkBytes: this.chunkBytes, root: this.root, generation: this.generation, entries: this.implicitRoot ? entries.filter((e) => e.name !== '.') : entries };
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
