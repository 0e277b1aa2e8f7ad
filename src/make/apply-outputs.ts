import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Agent, PeerAddr } from '../agent/index.js';
import { unsafePath } from '../errors.js';
import type { StateRecord } from '../indexer/index.js';
import { tempBeside } from '../store/index.js';
import { resolveInside, symlinkStaysInside } from '../toc/index.js';
import type { Output } from './job.js';

/**
 * Brings a job's output files into the driver's host store, verified: the bytes that came inside
 * the result, or straight from the worker that wrote them (`from`: nobody else has them, and
 * asking the cluster costs a round). Done before anything in the tree changes: if the worker is
 * gone or sent bytes that do not match, the tree is untouched.
 */
export async function fetchOutputs(agent: Agent, outputs: Output[], from?: PeerAddr): Promise<void> {
  const opts = from ? { hints: [from], hintsFirst: true } : {};
  await Promise.all(outputs.map((o) => {
    if (o.type !== 'reg' || o.desc.size === 0) return undefined;
    return o.data !== undefined ? agent.storeBytes(o.desc, Buffer.from(o.data, 'base64')) : agent.fetch(o.desc, opts);
  }));
}

/**
 * Writes fetched outputs into the driver's real tree: each file copied from the store to a temp
 * name beside its place, given its mode and mtime, and renamed over it, so make and the user never
 * see a half-written output. Names were checked to stay inside. Returns the bytes written and,
 * per regular file, its stat as written with its content (an index-state record).
 */
export async function writeOutputs(agent: Agent, root: string, outputs: Output[]): Promise<{ bytes: number; records: Map<string, StateRecord> }> {
  let bytes = 0;
  const records = new Map<string, StateRecord>();
  const order = { dir: 0, reg: 1, symlink: 1, deleted: 2 } as const;
  for (const o of [...outputs].sort((a, b) => order[a.type] - order[b.type] || (a.type === 'deleted' ? b.name.length - a.name.length : a.name.length - b.name.length))) {
    const dest = resolveInside(root, o.name);
    if (o.type === 'dir') {
      await fsp.mkdir(dest, { recursive: true });
      await fsp.chmod(dest, o.mode);
    } else if (o.type === 'reg') {
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      const tmp = tempBeside(dest);
      try {
        if (o.desc.size > 0) await fsp.copyFile(agent.store.objectPath(o.desc.digest), tmp, fs.constants.COPYFILE_EXCL);
        else await fsp.writeFile(tmp, '', { flag: 'wx' });
        await fsp.chmod(tmp, o.mode);
        await fsp.utimes(tmp, o.mtimeMs / 1000, o.mtimeMs / 1000);
        await fsp.rename(tmp, dest);
      } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
      }
      const st = await fsp.lstat(dest);
      records.set(o.name, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, digest: o.desc.digest, chunks: o.desc.chunks });
      bytes += o.desc.size;
    } else if (o.type === 'symlink') {
      if (!symlinkStaysInside(o.name, o.linkName)) throw unsafePath(o.name, `symlink to ${o.linkName} leaves the tree`);
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      const tmp = tempBeside(dest);
      await fsp.symlink(o.linkName, tmp);
      await fsp.rename(tmp, dest);
    } else {
      const st = await fsp.lstat(dest).catch(() => undefined);
      if (st?.isDirectory()) await fsp.rmdir(dest).catch(() => undefined);
      else if (st) await fsp.rm(dest, { force: true });
    }
  }
  return { bytes, records };
}
