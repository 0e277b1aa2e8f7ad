import { digestBytes, type Digest } from '../hash/index.js';
import { baseName, parentName } from './paths.js';
import type { TocEntry } from './types.js';

const enc = new TextEncoder();

/** What a directory hashes of one entry: its base name (the sort key) and its header. */
interface Node {
  /** The entry as it was when the node was made. */
  of: Pick<TocEntry, 'name' | 'type' | 'mode' | 'modtime' | 'size' | 'digest' | 'linkName'>;
  base: string;
  /** Everything a reader can observe of the entry, apart from its children. */
  header: string;
  /** The base name holds a surrogate pair: it sorts by compareNames. */
  surrogate: boolean;
}

/**
 * Each entry's node, kept: a directory is hashed again whenever one of its entries changes, and
 * making every child's header again was most of the cost of a TOC delta (a worker applies one per
 * job whose outputs came home: ~0.5 ms per delta in a directory of 1,000 outputs). A node is
 * made again if its entry was changed since (comparing the fields costs less than the header).
 */
const nodes = new WeakMap<TocEntry, Node>();

function nodeOf(e: TocEntry): Node {
  const n = nodes.get(e);
  if (n && n.of.name === e.name && n.of.type === e.type && n.of.mode === e.mode && n.of.modtime === e.modtime && n.of.size === e.size && n.of.digest === e.digest && n.of.linkName === e.linkName) return n;
  const base = baseName(e.name);
  const made: Node = {
    of: { name: e.name, type: e.type, mode: e.mode, modtime: e.modtime, size: e.size, digest: e.digest, linkName: e.linkName },
    base,
    // One join: a flat string (a template would keep a rope of its pieces, ~3x the bytes, for every entry of the tree).
    header: [e.type, base, e.mode.toString(8), e.modtime, e.size ?? '', e.digest ?? '', e.linkName ?? ''].join('\0') + '\n',
    surrogate: SURROGATE_RE.test(base),
  };
  nodes.set(e, made);
  return made;
}

/** The node digest of a directory: its header, then each child's header (or node digest, for a directory) in name order. */
export function dirDigest(dir: TocEntry, kids: readonly TocEntry[], dirs: ReadonlyMap<string, Digest>): Digest {
  const named = kids.map((k) => ({ k, n: nodeOf(k) }));
  // Code-unit order is code-point order unless a name holds a surrogate pair (see compareNames).
  if (named.some(({ n }) => n.surrogate)) named.sort((a, b) => compareNames(a.n.base, b.n.base));
  else named.sort((a, b) => (a.n.base < b.n.base ? -1 : a.n.base > b.n.base ? 1 : 0));
  let text = nodeOf(dir).header;
  for (const { k, n } of named) text += k.type === 'dir' ? `${dirs.get(k.name)!}\n` : n.header;
  return digestBytes(enc.encode(text));
}

/**
 * Merkle tree over a tree, one node per directory: a directory hashes its own header followed,
 * in name order, by each child's header (files, links) or node hash (subdirectories). Two trees
 * have the same root iff they have the same names, types, modes, times, contents and links.
 * Hashing per directory rather than per entry keeps a 20,000-file tree to a few hundred hashes,
 * and lets a change of a few paths re-hash only their directories (TocView.withDelta).
 * Returns each directory's node digest; the root's is under `.`.
 */
export function merkleDirs(entries: readonly TocEntry[]): Map<string, Digest> {
  const children = new Map<string, TocEntry[]>();
  let root: TocEntry | undefined;
  for (const e of entries) {
    if (e.name === '.') {
      root = e;
      continue;
    }
    const p = parentName(e.name);
    let list = children.get(p);
    if (!list) children.set(p, (list = []));
    list.push(e);
  }
  root ??= { name: '.', type: 'dir', mode: 0o755, modtime: '' }; // a TOC without `.` (hand-made ones)
  // Iterative post-order: deep trees must not overflow the stack.
  const done = new Map<string, Digest>();
  const stack: Array<{ e: TocEntry; expanded: boolean }> = [{ e: root, expanded: false }];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const kids = children.get(top.e.name) ?? [];
    if (!top.expanded) {
      top.expanded = true;
      for (const k of kids) if (k.type === 'dir') stack.push({ e: k, expanded: false });
      continue;
    }
    stack.pop();
    done.set(top.e.name, dirDigest(top.e, kids, done));
  }
  return done;
}

export function merkleRoot(entries: readonly TocEntry[]): Digest {
  return merkleDirs(entries).get('.')!;
}

const SURROGATE_RE = /[\uD800-\uDFFF]/;

/**
 * Names compare as code points (the order of their UTF-8 bytes). UTF-16 code-unit order agrees
 * unless a surrogate pair is involved, which the slow path handles.
 */
export function compareNames(a: string, b: string): number {
  if (!SURROGATE_RE.test(a) && !SURROGATE_RE.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0)!;
    const cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx - cy;
  }
}
