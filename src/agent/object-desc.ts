import { isDigest, type Digest } from '../hash/index.js';
import { DftfsError } from '../errors.js';
import { MAX_CHUNK_BYTES, type TocChunk, type TocEntry } from '../toc/index.js';

/** What it takes to fetch and verify an object: its digest, size and chunk digests. */
export interface ObjectDesc {
  digest: Digest;
  size: number;
  chunks: TocChunk[];
}

export const descOf = (e: Pick<TocEntry, 'size' | 'digest' | 'chunks'>): ObjectDesc => ({ digest: e.digest!, size: e.size!, chunks: e.chunks! });

/** Checks a descriptor that came from the network: contiguous chunks covering the size. */
export function parseDesc(raw: unknown): ObjectDesc {
  const bad = (why: string) => new DftfsError('ERR_DFTFS_PROTOCOL', `malformed object descriptor: ${why}`);
  if (!raw || typeof raw !== 'object') throw bad('not an object');
  const d = raw as Record<string, unknown>;
  if (!isDigest(d.digest)) throw bad('digest');
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw bad('size');
  if (!Array.isArray(d.chunks)) throw bad('chunks');
  let next = 0;
  for (const c of d.chunks as Array<Record<string, unknown>>) {
    if (!c || c.chunkOffset !== next || typeof c.chunkSize !== 'number' || c.chunkSize <= 0 || c.chunkSize > MAX_CHUNK_BYTES || !isDigest(c.chunkDigest)) throw bad(`chunk at ${next}`);
    next += c.chunkSize;
  }
  if (next !== d.size) throw bad('chunks do not cover the size');
  return { digest: d.digest, size: d.size, chunks: d.chunks as TocChunk[] };
}
