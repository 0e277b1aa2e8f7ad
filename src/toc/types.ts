import type { Digest } from '../hash/index.js';

/** Largest chunk: big enough that per-chunk overhead vanishes, small enough to verify and retry cheaply. */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024;

/** The TOC format version; a reader refuses any other. */
export const TOC_VERSION = 1;

export type EntryType = 'dir' | 'reg' | 'symlink' | 'hardlink';

/** One chunk of a regular file (eStargz field names). */
export interface TocChunk {
  chunkOffset: number;
  chunkSize: number;
  chunkDigest: Digest;
}

/**
 * One path of a tree version. `name` is relative, '/'-separated, with no `.`/`..` parts; the root
 * directory itself is named `.`.
 */
export interface TocEntry {
  name: string;
  type: EntryType;
  /** Permission bits (07777). */
  mode: number;
  /** RFC 3339 with nanoseconds, UTC. */
  modtime: string;
  /** reg: bytes. */
  size?: number;
  /** reg: BLAKE3 of the whole file, as `b3sum` prints it. */
  digest?: Digest;
  /** reg: chunks in order, covering [0, size) without gaps; empty for an empty file. */
  chunks?: TocChunk[];
  /** symlink: its target as stored; hardlink: the name of the reg entry it shares content with. */
  linkName?: string;
}

/** A tree version. */
export interface Toc {
  version: typeof TOC_VERSION;
  hashAlgorithm: 'blake3';
  chunkBytes: number;
  /** Merkle root over the tree: names this version's content and metadata. */
  root: Digest;
  /** Orders versions of one tree as outputs come back; 0 for a fresh index. */
  generation: number;
  entries: TocEntry[];
}
