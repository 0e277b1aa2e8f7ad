import type fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { errnoCode } from '../errors.js';
import { isDigest, type Digest } from '../hash/index.js';
import type { TocChunk } from '../toc/index.js';
import type { WarningSink } from './warnings.js';

const STATE_VERSION = 1;

/** What a re-index compares to decide that a file is unchanged, and what it then reuses. */
export interface StateRecord {
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  digest: Digest;
  chunks: TocChunk[];
}

export interface IndexState {
  chunkBytes: number;
  files: Map<string, StateRecord>;
}

export function statKey(st: fs.BigIntStats): Pick<StateRecord, 'size' | 'mtimeNs' | 'ctimeNs' | 'ino'> {
  return { size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ctimeNs: st.ctimeNs.toString(), ino: st.ino.toString() };
}

export function sameStat(a: Pick<StateRecord, 'size' | 'mtimeNs' | 'ctimeNs' | 'ino'>, st: fs.BigIntStats): boolean {
  return a.size === Number(st.size) && a.mtimeNs === st.mtimeNs.toString() && a.ctimeNs === st.ctimeNs.toString() && a.ino === st.ino.toString();
}

function isRecord(r: unknown): r is StateRecord {
  if (!r || typeof r !== 'object') return false;
  const x = r as Record<string, unknown>;
  return typeof x.size === 'number' && typeof x.mtimeNs === 'string' && typeof x.ctimeNs === 'string' &&
    typeof x.ino === 'string' && isDigest(x.digest) && Array.isArray(x.chunks);
}

/**
 * Loads the index state; a missing file is an empty state, a corrupt one is reported and
 * rebuilt from scratch (the tree, not the state, is the truth).
 */
export async function loadIndexState(file: string, chunkBytes: number, warn: WarningSink): Promise<IndexState> {
  const empty: IndexState = { chunkBytes, files: new Map() };
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return empty;
    warn({ path: file, code: 'STATE_REBUILT', message: `index state ${file} unreadable (${errnoCode(err)}); re-indexing everything` });
    return empty;
  }
  try {
    const raw = JSON.parse(text) as { version?: unknown; chunkBytes?: unknown; files?: unknown };
    if (raw.version !== STATE_VERSION || raw.chunkBytes !== chunkBytes || !raw.files || typeof raw.files !== 'object') {
      throw new Error('unexpected version, chunk size or shape');
    }
    const files = new Map<string, StateRecord>();
    for (const [name, rec] of Object.entries(raw.files as Record<string, unknown>)) {
      if (!isRecord(rec)) throw new Error(`bad record for ${name}`);
      files.set(name, rec);
    }
    return { chunkBytes, files };
  } catch (err) {
    warn({ path: file, code: 'STATE_REBUILT', message: `index state ${file} is corrupt (${(err as Error).message}); re-indexing everything` });
    return empty;
  }
}

/** Writes the state atomically (temp file + rename): a crash keeps the previous state whole. */
export async function saveIndexState(file: string, state: IndexState): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const body = JSON.stringify({ version: STATE_VERSION, chunkBytes: state.chunkBytes, files: Object.fromEntries(state.files) });
  try {
    await fsp.writeFile(tmp, body);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}
