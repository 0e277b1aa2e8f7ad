import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Agent } from '../agent/index.js';
import { unsafePath } from '../errors.js';
import { tempBeside } from '../store/index.js';
import { resolveInside, symlinkStaysInside } from '../toc/index.js';
import type { Output } from './job.js';

/**
 * Writes a job's outputs into the driver's real tree: every file fetched and verified into the
 * store first, then copied to a temp name beside its place, given its mode and mtime, and renamed
 * over it, so make and the user never see a half-written output. Names were checked to stay inside.
 */
export async function applyOutputs(agent: Agent, root: string, outputs: Output[]): Promise<{ bytes: number }> {
  let bytes = 0;
  // Bring every file home first: if the worker is gone, nothing in the tree has changed yet.
  await Promise.all(outputs.map((o) => (o.type === 'reg' && o.desc.size > 0 ? agent.fetch(o.desc) : undefined)));
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
        if (o.desc.size > 0) await fsp.copyFile(agent.store.objectPath(o.desc.digest), tmp);
        else await fsp.writeFile(tmp, '');
        await fsp.chmod(tmp, o.mode);
        await fsp.utimes(tmp, o.mtimeMs / 1000, o.mtimeMs / 1000);
        await fsp.rename(tmp, dest);
      } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
      }
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
  return { bytes };
}
