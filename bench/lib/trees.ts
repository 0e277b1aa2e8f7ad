/** Source trees the cluster scenarios move, generated the same way every run (seeded). */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** A small deterministic PRNG (mulberry32): the same tree shape every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Bytes that do not compress (so --compress or ssh compression cannot cheat), from a seed. */
function bytesFor(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < n; off += block.length) {
    block.copy(out, off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export interface TreeShape {
  files: Array<{ rel: string; size: number }>;
  symlinks: Array<{ rel: string; target: string }>;
}

/** `count` files of `size` bytes, 100 per directory (5,000 × 4 KiB is the case). */
export function smallFilesShape(count: number, size: number): TreeShape {
  return { files: Array.from({ length: count }, (_, i) => ({ rel: `d${Math.floor(i / 100)}/f${i}.dat`, size })), symlinks: [] };
}

/**
 * A source-tree-like mix: many small sources (1–64 KiB), some medium objects (64 KiB–1 MiB),
 * a few large inputs (16 MiB), a few symlinks; `scale` multiplies the counts.
 */
export function mixedShape(scale = 1): TreeShape {
  const r = prng(42);
  const files: TreeShape['files'] = [];
  const n = (k: number) => Math.max(1, Math.round(k * scale));
  for (let i = 0; i < n(1000); i++) files.push({ rel: `src/m${i % 40}/s${i}.c`, size: 1024 + Math.floor(r() * 63 * 1024) });
  for (let i = 0; i < n(100); i++) files.push({ rel: `obj/o${i}.o`, size: 65536 + Math.floor(r() * 960 * 1024) });
  for (let i = 0; i < n(4); i++) files.push({ rel: `data/big${i}.bin`, size: 16 * 2 ** 20 });
  return { files, symlinks: [{ rel: 'src/latest', target: 'm0' }, { rel: 'data/current.bin', target: 'big0.bin' }] };
}

export const shapeBytes = (s: TreeShape) => s.files.reduce((a, f) => a + f.size, 0);

/** Writes a shape under `root`. */
export function writeTree(root: string, shape: TreeShape): void {
  for (const f of shape.files) {
    const p = path.join(root, f.rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, bytesFor(f.size, f.rel));
  }
  for (const l of shape.symlinks) {
    const p = path.join(root, l.rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.symlinkSync(l.target, p);
  }
}

/** A shell line printing one digest of every regular file's path and contents under DIR. */
export const treeDigestCmd = (dir: string) =>
  `cd '${dir}' && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r b3sum | b3sum --no-names`;
