import { malformedToc, isDftfsError } from '../errors.js';
import { digestBytes, isDigest, type Digest } from '../hash/index.js';
import { merkleDirs } from './merkle.js';
import { isModtime } from './modtime.js';
import { checkEntryName, parentName } from './paths.js';
import { MAX_CHUNK_BYTES, TOC_VERSION, type Toc, type TocEntry } from './types.js';

/** A TOC larger than this is refused before parsing: ~2.5 M entries, far past any source tree. */
export const MAX_TOC_BYTES = 512 * 1024 * 1024;

const EMPTY_DIGEST = digestBytes(new Uint8Array(0));

/** The canonical bytes of a TOC: what its digest names and what travels. */
/** Entries turned into text at a time when encoding (small pieces die young; see tocPieces). */
const PIECE_ENTRIES = 64;

/**
 * The TOC's canonical bytes, exactly `JSON.stringify(toc)`, in pieces made as they are consumed:
 * a 100,000-entry TOC is ~32 MB, and a publisher writes and hashes it without ever holding it
 * whole (as one string or one buffer).
 */
export function* tocPieces(toc: Toc): Generator<Buffer> {
  const [before, after] = JSON.stringify({ ...toc, entries: 0 }).split('"entries":0') as [string, string];
  yield Buffer.from(`${before}"entries":[`);
  for (let i = 0; i < toc.entries.length; i += PIECE_ENTRIES) {
    const text = toc.entries.slice(i, i + PIECE_ENTRIES).map((e) => JSON.stringify(e)).join(',');
    yield Buffer.from(i === 0 ? text : `,${text}`);
  }
  yield Buffer.from(`]${after}`);
}

/** The TOC's canonical bytes in one buffer (see tocPieces). */
export function encodeToc(toc: Toc): Uint8Array {
  return Buffer.concat([...tocPieces(toc)]);
}

export function tocDigest(bytes: Uint8Array): Digest {
  return digestBytes(bytes);
}

/** Parses and validates TOC bytes from anywhere (disk, peer, archive); refuses anything malformed. */
export function decodeToc(bytes: Uint8Array): Toc {
  return decodeTocDirs(bytes).toc;
}

/** decodeToc, also returning each directory's Merkle node digest (a TocView keeps them to apply deltas). */
export function decodeTocDirs(bytes: Uint8Array): { toc: Toc; dirs: Map<string, Digest> } {
  if (bytes.length > MAX_TOC_BYTES) throw malformedToc(`${bytes.length} bytes is over the limit of ${MAX_TOC_BYTES}`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw malformedToc(`not JSON (${(err as Error).message})`);
  }
  const dirs = validateTocDirs(raw);
  return { toc: raw as Toc, dirs };
}

const isUint = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** Throws ERR_DFTFS_MALFORMED_TOC (or ERR_DFTFS_UNSAFE_PATH) unless `raw` is a well-formed TOC. */
export function validateToc(raw: unknown): asserts raw is Toc {
  validateTocDirs(raw);
}

function validateTocDirs(raw: unknown): Map<string, Digest> {
  if (!raw || typeof raw !== 'object') throw malformedToc('not an object');
  const t = raw as Record<string, unknown>;
  if (t.version !== TOC_VERSION) throw malformedToc(`unsupported version ${JSON.stringify(t.version)} (this dftfs reads ${TOC_VERSION})`);
  if (t.hashAlgorithm !== 'blake3') throw malformedToc(`unsupported hash ${JSON.stringify(t.hashAlgorithm)}`);
  if (!isUint(t.chunkBytes) || t.chunkBytes === 0 || t.chunkBytes > MAX_CHUNK_BYTES) throw malformedToc('bad chunkBytes');
  if (!isUint(t.generation)) throw malformedToc('bad generation');
  if (!isDigest(t.root)) throw malformedToc('bad root digest');
  if (!Array.isArray(t.entries)) throw malformedToc('entries is not an array');
  const chunkBytes = t.chunkBytes;
  const seen = new Map<string, TocEntry>();
  const lookup = (n: string) => seen.get(n);
  for (const [i, e] of (t.entries as unknown[]).entries()) {
    try {
      if (seen.has((e as TocEntry)?.name)) throw malformedToc(`duplicate name ${JSON.stringify((e as TocEntry).name)}`);
      checkEntry(e, chunkBytes, lookup);
    } catch (err) {
      if (isDftfsError(err, 'ERR_DFTFS_MALFORMED_TOC')) throw malformedToc(`entry ${i}: ${err.message.replace(/^malformed TOC: /, '')}`);
      throw err;
    }
    seen.set((e as TocEntry).name, e as TocEntry);
  }
  const dirs = merkleDirs(t.entries as TocEntry[]);
  if (dirs.get('.') !== t.root) throw malformedToc('root does not match the entries');
  return dirs;
}

/**
 * Throws unless `raw` is a well-formed entry whose directory (and, for a hard link, whose target)
 * `lookup` finds: a TOC checks each entry against those before it, a delta against the tree it
 * applies to.
 */
export function checkEntry(raw: unknown, chunkBytes: number, lookup: (name: string) => TocEntry | undefined): asserts raw is TocEntry {
  if (!raw || typeof raw !== 'object') throw malformedToc('not an object');
  const e = raw as Record<string, unknown>;
  if (typeof e.name !== 'string') throw malformedToc('name is not a string');
  checkEntryName(e.name);
  if (e.name !== '.') {
    const parent = lookup(parentName(e.name));
    if (!parent || parent.type !== 'dir') throw malformedToc(`${JSON.stringify(e.name)} comes before its directory`);
  }
  if (!isUint(e.mode) || e.mode > 0o7777) throw malformedToc(`${e.name}: bad mode`);
  if (typeof e.modtime !== 'string' || !isModtime(e.modtime)) throw malformedToc(`${e.name}: bad modtime`);
  switch (e.type) {
    case 'dir':
      return;
    case 'symlink':
      if (typeof e.linkName !== 'string' || e.linkName.length === 0) throw malformedToc(`${e.name}: symlink without linkName`);
      return;
    case 'hardlink': {
      const target = typeof e.linkName === 'string' ? lookup(e.linkName) : undefined;
      if (!target || target.type !== 'reg') throw malformedToc(`${e.name}: hardlink to ${JSON.stringify(e.linkName)}, which is not an earlier regular file`);
      return;
    }
    case 'reg':
      validateChunks(e, chunkBytes);
      return;
    default:
      throw malformedToc(`${e.name}: unknown type ${JSON.stringify(e.type)}`);
  }
}

function validateChunks(e: Record<string, unknown>, chunkBytes: number): void {
  const name = e.name as string;
  if (!isUint(e.size)) throw malformedToc(`${name}: bad size`);
  if (!isDigest(e.digest)) throw malformedToc(`${name}: bad digest`);
  if (!Array.isArray(e.chunks)) throw malformedToc(`${name}: chunks is not an array`);
  let next = 0;
  // A file's only chunk must have the file's digest (checked below): its own check is that equality.
  const one = e.chunks.length === 1;
  for (const c of e.chunks as Array<Record<string, unknown>>) {
    if (!c || c.chunkOffset !== next || !isUint(c.chunkSize) || c.chunkSize === 0 || c.chunkSize > chunkBytes || !(one || isDigest(c.chunkDigest))) {
      throw malformedToc(`${name}: chunk at ${next} is malformed or out of place`);
    }
    next += c.chunkSize;
  }
  if (next !== e.size) throw malformedToc(`${name}: chunks cover ${next} bytes of ${e.size}`);
  const chunks = e.chunks as Array<{ chunkDigest: string }>;
  if (chunks.length === 0 && e.digest !== EMPTY_DIGEST) throw malformedToc(`${name}: empty file with a non-empty digest`);
  if (chunks.length === 1 && chunks[0]!.chunkDigest !== e.digest) throw malformedToc(`${name}: single chunk digest differs from the file digest`);
}
