import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { DftfsError, isDftfsError } from '../errors.js';
import type { Digest } from '../hash/index.js';
import type { ObjectStore } from '../store/index.js';
import {
  checkEntryName, decodeToc, symlinkStaysInside, tocDigest, MAX_TOC_BYTES,
  type Toc, type TocEntry,
} from '../toc/index.js';
import { TOC_ENTRY_NAME } from './format.js';

export interface ImportResult {
  toc: Toc;
  tocDigest: Digest;
  objectsWritten: number;
  bytes: number;
  /** Entries refused (unsafe, not in the TOC, wrong type, bad digest), each with its reason. */
  refused: Array<{ name: string; reason: string }>;
}

const malformed = (msg: string) => new DftfsError('ERR_DFTFS_MALFORMED_ARCHIVE', msg);

async function drain(stream: Readable): Promise<void> {
  for await (const _ of stream) { /* discard */ }
}

async function readAll(stream: Readable, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > limit) throw malformed(`${TOC_ENTRY_NAME} is larger than ${limit} bytes`);
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

/**
 * Reads a dftfs archive into the host store. The TOC must come first and be well formed; each
 * later entry must be named by the TOC with the same type, and every file's bytes must hash to
 * its TOC digest before they become a store object. Unsafe entries (`..`, absolute, links out
 * of the tree) are refused and reported, never written.
 */
export async function importArchive(input: Readable, store: ObjectStore): Promise<ImportResult> {
  const extract = tar.extract();
  input.on('error', (err) => extract.destroy(err));
  input.pipe(extract);
  let toc: Toc | undefined;
  let digest: Digest | undefined;
  let tocBytes: Buffer | undefined;
  let byName = new Map<string, TocEntry>();
  const seen = new Set<string>();
  const refused: ImportResult['refused'] = [];
  let objectsWritten = 0;
  let bytes = 0;
  for await (const entry of extract) {
    const h = entry.header;
    if (!toc) {
      if (h.name !== TOC_ENTRY_NAME || h.type !== 'file') throw malformed(`first entry is ${JSON.stringify(h.name)}, not ${TOC_ENTRY_NAME}: not a dftfs archive`);
      tocBytes = await readAll(entry, MAX_TOC_BYTES);
      toc = decodeToc(tocBytes);
      digest = tocDigest(tocBytes);
      byName = new Map(toc.entries.map((e) => [e.name, e]));
      continue;
    }
    const name = h.name.replace(/\/+$/, '');
    const refuse = async (reason: string) => {
      refused.push({ name: h.name, reason });
      await drain(entry);
    };
    try {
      checkEntryName(name);
    } catch (err) {
      if (!isDftfsError(err, 'ERR_DFTFS_UNSAFE_PATH')) throw err;
      await refuse(err.message);
      continue;
    }
    const want = byName.get(name);
    const type = h.type === 'directory' ? 'dir' : h.type === 'file' ? 'reg' : h.type === 'symlink' ? 'symlink' : h.type === 'link' ? 'hardlink' : h.type;
    if (!want) { await refuse('not in the TOC'); continue; }
    if (want.type !== type) { await refuse(`is a ${type} in the tar but a ${want.type} in the TOC`); continue; }
    if (type === 'symlink' && h.linkname !== want.linkName) { await refuse('symlink target differs from the TOC'); continue; }
    if (type === 'symlink' && !symlinkStaysInside(name, want.linkName!)) {
      await refuse(`symlink to ${JSON.stringify(want.linkName)} points outside the tree`);
      continue;
    }
    if (type === 'hardlink' && h.linkname !== want.linkName) { await refuse('hardlink target differs from the TOC'); continue; }
    if (type === 'reg') {
      try {
        const put = await store.putStream(entry, want.digest);
        if (put.written) objectsWritten++;
        bytes += put.size;
      } catch (err) {
        if (!isDftfsError(err, 'ERR_DFTFS_DIGEST_MISMATCH')) throw err;
        await refuse(err.message);
        continue;
      }
    } else {
      await drain(entry);
    }
    seen.add(name);
  }
  if (!toc || !digest || !tocBytes) throw malformed('empty archive: no TOC');
  await store.putBytes(tocBytes, digest);
  const refusedNames = new Set(refused.map((r) => r.name));
  for (const e of toc.entries) {
    if (e.type === 'reg' && !seen.has(e.name) && !refusedNames.has(e.name) && !store.has(e.digest!)) refused.push({ name: e.name, reason: 'missing from the archive' });
  }
  return { toc, tocDigest: digest, objectsWritten, bytes, refused };
}
