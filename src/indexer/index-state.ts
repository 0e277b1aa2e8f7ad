import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { errnoCode } from '../errors.js';
import type { Digest } from '../hash/index.js';
import type { TocChunk, TocEntry } from '../toc/index.js';
import { SYNC_IO_MAX_BYTES } from '../store/index.js';
import type { WarningSink } from './warnings.js';

const STATE_VERSION = 3;

/** Records turned into text at a time when the state is written whole. */
const STATE_WRITE_RECORDS = 1024;

/**
 * On disk a record is a compact array, [size, mtimeMs, ctimeMs, ino, digest, chunkDigests?]:
 * objects with repeated keys tripled the state's size and its parse time. Chunk digests are
 * stored only for files of more than one chunk (a single chunk's digest is the file's).
 */
type DiskRecord = [number, number, number, number, string, string[]?];

/** What a re-index compares to decide that a file is unchanged, and what it then reuses. */
export interface StateRecord {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  digest: Digest;
  chunks: TocChunk[];
  /**
   * In memory only: the TOC entry last made from this record. A re-index of a file whose stat
   * and mode did not change reuses it, so two generations of a TOC share their unchanged entries
   * (a 100,000-file tree's entries are ~20 MB, and a re-index held both generations at once).
   */
  entry?: TocEntry;
}

export interface IndexState {
  chunkBytes: number;
  files: Map<string, StateRecord>;
  /** Lines in the journal behind `files` (see saveIndexState). */
  journalLines: number;
  /** The base on disk is missing or corrupt: the next save writes it whole. */
  rewrite?: boolean;
}

type StatKey = Pick<StateRecord, 'size' | 'mtimeMs' | 'ctimeMs' | 'ino'>;

export function statKey(st: StatKey): StatKey {
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
}

export function sameStat(a: StatKey, st: StatKey): boolean {
  return a.size === st.size && a.mtimeMs === st.mtimeMs && a.ctimeMs === st.ctimeMs && a.ino === st.ino;
}

/** The state is our own file: a shape check suffices (a full regex per digest cost ~10 ms per 20k files). */
const looksLikeDigest = (d: unknown): d is Digest => typeof d === 'string' && d.length === 71 && d.startsWith('blake3:');

function toDisk(r: StateRecord): DiskRecord {
  const rec: DiskRecord = [r.size, r.mtimeMs, r.ctimeMs, r.ino, r.digest];
  if (r.chunks.length > 1) rec.push(r.chunks.map((c) => c.chunkDigest));
  return rec;
}

function fromDisk(raw: unknown, chunkBytes: number): StateRecord | undefined {
  if (!Array.isArray(raw) || raw.length < 5 || raw.length > 6) return undefined;
  const [size, mtimeMs, ctimeMs, ino, digest, chunkDigests] = raw as unknown[];
  if (typeof size !== 'number' || typeof mtimeMs !== 'number' || typeof ctimeMs !== 'number' || typeof ino !== 'number' || !looksLikeDigest(digest)) return undefined;
  const digests = chunkDigests === undefined ? (size > 0 ? [digest] : []) : chunkDigests;
  if (!Array.isArray(digests) || digests.length !== Math.ceil(size / chunkBytes) || !digests.every(looksLikeDigest)) return undefined;
  const chunks = digests.map((d, i) => ({ chunkOffset: i * chunkBytes, chunkSize: Math.min(chunkBytes, size - i * chunkBytes), chunkDigest: d as Digest }));
  return { size, mtimeMs, ctimeMs, ino, digest, chunks };
}

/**
 * Loads the index state; a missing file is an empty state, a corrupt one is reported and
 * rebuilt from scratch (the tree, not the state, is the truth).
 */
/**
 * The state is a base file plus an append-only journal (`FILE.log`, one JSON line per changed
 * path): a re-index that changed a few files appends a few lines instead of rewriting megabytes.
 * Any record is valid whenever its stat key matches the file, so a torn last line (a crash mid-
 * append) or a journal older than its base cost at most a re-hash, never a wrong digest.
 */
const journalPath = (file: string) => `${file}.log`;

/** The journal is folded into the base once it holds this share of the records (or 64 lines). */
const JOURNAL_MAX_SHARE = 1 / 8;
const JOURNAL_MIN_LINES = 64;

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Loads the index state; a missing file is an empty state, a corrupt one is reported and
 * rebuilt from scratch (the tree, not the state, is the truth).
 */
export async function loadIndexState(file: string, chunkBytes: number, warn: WarningSink): Promise<IndexState> {
  const empty: IndexState = { chunkBytes, files: new Map(), journalLines: 0, rewrite: true };
  let text: string | undefined;
  let journal: string | undefined;
  try {
    [text, journal] = await Promise.all([readText(file), readText(journalPath(file))]);
  } catch (err) {
    warn({ path: file, code: 'STATE_REBUILT', message: `index state ${file} unreadable (${errnoCode(err)}); re-indexing everything` });
    return empty;
  }
  if (text === undefined) return empty;
  let files: Map<string, StateRecord>;
  try {
    const raw = JSON.parse(text) as { version?: unknown; chunkBytes?: unknown; files?: unknown };
    if (raw.version !== STATE_VERSION || raw.chunkBytes !== chunkBytes || !raw.files || typeof raw.files !== 'object') {
      throw new Error('unexpected version, chunk size or shape');
    }
    files = new Map();
    for (const [name, disk] of Object.entries(raw.files as Record<string, unknown>)) {
      const rec = fromDisk(disk, chunkBytes);
      if (!rec) throw new Error(`bad record for ${name}`);
      files.set(name, rec);
    }
  } catch (err) {
    warn({ path: file, code: 'STATE_REBUILT', message: `index state ${file} is corrupt (${(err as Error).message}); re-indexing everything` });
    return empty;
  }
  let journalLines = 0;
  for (const line of (journal ?? '').split('\n')) {
    if (!line) continue;
    journalLines++;
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // a torn line: its path will simply be re-hashed
    }
    if (!Array.isArray(entry) || typeof entry[0] !== 'string') continue;
    const rec = entry[1] === null ? null : fromDisk(entry[1], chunkBytes);
    if (rec === null) files.delete(entry[0]);
    else if (rec) files.set(entry[0], rec);
  }
  return { chunkBytes, files, journalLines };
}

/**
 * The state file's text a slice of records at a time: the state of a 100,000-file tree is ~14 MB,
 * never built as one string (nor as one object of 100,000 keys).
 */
function* stateText(state: IndexState): Generator<string> {
  yield `{"version":${STATE_VERSION},"chunkBytes":${state.chunkBytes},"files":{`;
  let slice: string[] = [];
  let sep = '';
  for (const [name, r] of state.files) {
    slice.push(`${sep}${JSON.stringify(name)}:${JSON.stringify(toDisk(r))}`);
    sep = ',';
    if (slice.length === STATE_WRITE_RECORDS) {
      yield slice.join('');
      slice = [];
    }
  }
  yield slice.join('') + '}}';
}

/**
 * Saves the state: appends `changes` (a record, or null for a removed path) to the journal, or
 * when the journal has grown, writes the whole state atomically (temp file + rename) and drops
 * the journal. A crash at any point leaves a loadable state.
 */
export async function saveIndexState(file: string, state: IndexState, changes?: ReadonlyMap<string, StateRecord | null>): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const limit = Math.max(JOURNAL_MIN_LINES, state.files.size * JOURNAL_MAX_SHARE);
  if (changes && !state.rewrite && state.journalLines + changes.size <= limit) {
    await appendIndexJournal(file, changes);
    state.journalLines += changes.size;
    return;
  }
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fsp.writeFile(tmp, stateText(state));
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fsp.rm(journalPath(file), { force: true });
  state.journalLines = 0;
  state.rewrite = false;
}

/**
 * Appends records to the journal of the state at `file` without loading it: a TOC updated from
 * paths whose content is known (the make driver's outputs) keeps the index state in step. The
 * next index folds the journal in when it has grown.
 */
export async function appendIndexJournal(file: string, changes: ReadonlyMap<string, StateRecord | null>): Promise<void> {
  if (changes.size === 0) return;
  const lines = [...changes].map(([n, r]) => JSON.stringify([n, r && toDisk(r)]) + '\n').join('');
  // A few lines, after nearly every job of a make build: synchronously (see SYNC_IO_MAX_BYTES).
  if (lines.length <= SYNC_IO_MAX_BYTES) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.appendFileSync(journalPath(file), lines);
    return;
  }
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.appendFile(journalPath(file), lines);
}
