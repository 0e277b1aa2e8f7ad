import { createHasher, type Digest } from '../hash/index.js';
import { baseName, parentName } from './paths.js';
import type { TocEntry } from './types.js';

const enc = new TextEncoder();

/** What a node hashes of its own entry: everything a reader can observe of it, apart from its children. */
function header(e: TocEntry): string {
  return [e.type, baseName(e.name), e.mode.toString(8), e.modtime, e.size ?? '', e.digest ?? '', e.linkName ?? ''].join('\0') + '\n';
}

/**
 * Merkle root over a tree: a leaf hashes its header; a directory hashes its header followed by
 * its children's hashes in name order. Two trees have the same root iff they have the same names,
 * types, modes, times, contents and links.
 */
export function merkleRoot(entries: readonly TocEntry[]): Digest {
  const children = new Map<string, TocEntry[]>();
  for (const e of entries) {
    if (e.name === '.') continue;
    const p = parentName(e.name);
    let list = children.get(p);
    if (!list) children.set(p, (list = []));
    list.push(e);
  }
  const root = entries.find((e) => e.name === '.') ?? { name: '.', type: 'dir', mode: 0o755, modtime: '' };
  // Iterative post-order: deep trees must not overflow the stack.
  const done = new Map<string, Digest>();
  const stack: Array<{ e: TocEntry; expanded: boolean }> = [{ e: root, expanded: false }];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const kids = top.e.type === 'dir' ? children.get(top.e.name) ?? [] : [];
    if (!top.expanded) {
      top.expanded = true;
      for (const k of kids) stack.push({ e: k, expanded: false });
      continue;
    }
    stack.pop();
    const h = createHasher();
    h.update(enc.encode(header(top.e)));
    const sorted = kids.map((k) => k.name).sort(compareNames);
    for (const k of sorted) h.update(enc.encode(done.get(k)! + '\n'));
    done.set(top.e.name, h.digest());
  }
  return done.get(root.name)!;
}

/** Byte order of UTF-16 code units is not the order of UTF-8 bytes; names compare as code points. */
export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
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
