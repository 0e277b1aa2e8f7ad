import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { DftfsError } from '../errors.js';
import { createHasher } from '../hash/index.js';
import { encodeToc, parseModtime, type Toc } from '../toc/index.js';
import { TOC_ENTRY_NAME } from './format.js';

export interface ExportStats {
  entries: number;
  bytes: number;
}

const toDate = (modtime: string) => new Date(Number(parseModtime(modtime)! / 1_000_000n));

/**
 * Writes a tree version as one tar: the TOC first, then every entry. File bytes are re-hashed as
 * they stream out; a file that no longer matches its TOC digest aborts the export.
 */
export async function exportTree(root: string, toc: Toc, out: Writable): Promise<ExportStats> {
  const pack = tar.pack();
  const done = pipeline(pack, out);
  let bytes = 0;
  const add = (header: tar.Headers, body?: Buffer) =>
    new Promise<void>((resolve, reject) => pack.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  try {
    await add({ name: TOC_ENTRY_NAME, mode: 0o644, mtime: new Date(), type: 'file' }, Buffer.from(encodeToc(toc)));
    for (const e of toc.entries) {
      if (e.name === '.') continue;
      const header = { name: e.name, mode: e.mode, mtime: toDate(e.modtime) };
      if (e.type === 'dir') await add({ ...header, name: e.name + '/', type: 'directory' });
      else if (e.type === 'symlink') await add({ ...header, type: 'symlink', linkname: e.linkName! });
      else if (e.type === 'hardlink') await add({ ...header, type: 'link', linkname: e.linkName! });
      else {
        const hasher = createHasher();
        const sink = pack.entry({ ...header, type: 'file', size: e.size! });
        const tap = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hasher.update(chunk);
            cb(null, chunk);
          },
        });
        await pipeline(fs.createReadStream(path.join(root, e.name)), tap, sink).catch((err: Error) => {
          throw new DftfsError('ERR_DFTFS_FILE_CHANGED', `${e.name}: ${err.message}`, { hint: 're-run the export once the tree is quiet', cause: err });
        });
        const digest = hasher.digest();
        if (digest !== e.digest) {
          throw new DftfsError('ERR_DFTFS_FILE_CHANGED', `${e.name} changed since it was indexed`, { hint: 're-run the export once the tree is quiet' });
        }
        bytes += e.size!;
      }
    }
    pack.finalize();
    await done;
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => undefined);
    throw err;
  }
  return { entries: toc.entries.length, bytes };
}
