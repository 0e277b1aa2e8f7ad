import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Agent, PeerAddr } from '../agent/index.js';
import { unsafePath } from '../errors.js';
import type { StateRecord } from '../indexer/index.js';
import { SYNC_IO_MAX_BYTES, tempBeside } from '../store/index.js';
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

type RegOutput = Extract<Output, { type: 'reg' }>;

/**
 * An output copied from the store to a temp name beside its place, given its mode and mtime, and
 * renamed over it. Synchronously but for the copy of a large file: the driver lands one result at
 * a time, and when many jobs ended at once each thread-pool round trip of these six calls waited
 * behind everything else the driver had to do (the first wave of a 16-slot build landed one
 * result per ~18 ms). See SYNC_IO_MAX_BYTES.
 */
async function place(agent: Agent, o: RegOutput, dest: string): Promise<fs.Stats> {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = tempBeside(dest);
  try {
    const object = agent.store.objectPath(o.desc.digest);
    if (o.desc.size > SYNC_IO_MAX_BYTES) await fsp.copyFile(object, tmp, fs.constants.COPYFILE_EXCL);
    else if (o.desc.size > 0) fs.copyFileSync(object, tmp, fs.constants.COPYFILE_EXCL);
    else fs.writeFileSync(tmp, '', { flag: 'wx' });
    fs.chmodSync(tmp, o.mode);
    fs.utimesSync(tmp, o.mtimeMs / 1000, o.mtimeMs / 1000);
    fs.renameSync(tmp, dest);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return fs.lstatSync(dest);
}

/**
 * Writes fetched outputs into the driver's real tree: each file copied from the store to a temp
 * name beside its place, given its mode and mtime, and renamed over it, so make and the user never
 * see a half-written output. Names were checked to stay inside. Returns the bytes written and,
 * per regular file, its stat as written with its content (an index-state record). Only the copy
 * of a large file goes through the thread pool (see place).
 */
export async function writeOutputs(agent: Agent, root: string, outputs: Output[]): Promise<{ bytes: number; records: Map<string, StateRecord> }> {
  let bytes = 0;
  const records = new Map<string, StateRecord>();
  const order = { dir: 0, reg: 1, symlink: 1, deleted: 2 } as const;
  for (const o of [...outputs].sort((a, b) => order[a.type] - order[b.type] || (a.type === 'deleted' ? b.name.length - a.name.length : a.name.length - b.name.length))) {
    const dest = resolveInside(root, o.name);
    if (o.type === 'dir') {
      fs.mkdirSync(dest, { recursive: true });
      fs.chmodSync(dest, o.mode);
    } else if (o.type === 'reg') {
      const st = await place(agent, o, dest);
      records.set(o.name, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, digest: o.desc.digest, chunks: o.desc.chunks });
      bytes += o.desc.size;
    } else if (o.type === 'symlink') {
      if (!symlinkStaysInside(o.name, o.linkName)) throw unsafePath(o.name, `symlink to ${o.linkName} leaves the tree`);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      const tmp = tempBeside(dest);
      fs.symlinkSync(o.linkName, tmp);
      fs.renameSync(tmp, dest);
    } else {
      const st = fs.lstatSync(dest, { throwIfNoEntry: false });
      if (st?.isDirectory()) {
        try {
          fs.rmdirSync(dest);
        } catch {
          // not empty: another job's files are still in it
        }
      } else if (st) fs.rmSync(dest, { force: true });
    }
  }
  return { bytes, records };
}
