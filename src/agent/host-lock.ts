import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../errors.js';
import { digestHex, type Digest } from '../hash/index.js';

/** What a lock file holds; `dftfs status` reads these to show transfers in progress. */
export interface LockInfo {
  pid: number;
  agent: string;
  object: Digest;
  size: number;
  startedMs: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/**
 * One download per object per host: the first agent creates `locks/<hex>` (O_EXCL); the host's
 * other agents see it, wait for the object to land in the shared store, and hardlink it. A lock
 * whose process is gone is stale and is taken over.
 */
export class HostLocks {
  readonly dir: string;

  constructor(storeRoot: string) {
    this.dir = path.join(storeRoot, 'locks');
    fs.mkdirSync(this.dir, { recursive: true });
  }

  private file(object: Digest): string {
    return path.join(this.dir, digestHex(object));
  }

  /** True if this process now holds the lock; false if a live process does. */
  async tryAcquire(info: LockInfo): Promise<boolean> {
    const f = this.file(info.object);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await fsp.writeFile(f, JSON.stringify(info), { flag: 'wx' });
        return true;
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
      }
      const holder = await this.read(info.object);
      if (holder && alive(holder.pid) && holder.pid !== process.pid) return false;
      if (holder?.pid === process.pid && holder.agent !== info.agent) return false;
      await fsp.rm(f, { force: true }); // stale: its process died mid-download
    }
    return false;
  }

  async read(object: Digest): Promise<LockInfo | undefined> {
    try {
      return JSON.parse(await fsp.readFile(this.file(object), 'utf8')) as LockInfo;
    } catch {
      return undefined;
    }
  }

  async release(object: Digest): Promise<void> {
    await fsp.rm(this.file(object), { force: true });
  }

  /** Every lock held by a live process: the host's transfers in progress. */
  async list(): Promise<LockInfo[]> {
    const out: LockInfo[] = [];
    for (const name of await fsp.readdir(this.dir).catch(() => [] as string[])) {
      try {
        const info = JSON.parse(await fsp.readFile(path.join(this.dir, name), 'utf8')) as LockInfo;
        if (alive(info.pid)) out.push(info);
      } catch {
        /* removed meanwhile */
      }
    }
    return out;
  }
}
