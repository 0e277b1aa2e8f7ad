import { createHash } from 'node:crypto';
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

function inodeOf(f: string): number | undefined {
  try {
    return fs.statSync(f).ino;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/** Where lock files live: a RAM file system when the host has one (see HostLocks). */
const SHM = '/dev/shm';

/** Names the store a lock directory belongs to (its real path). */
const STORE_MARK = '.store';
/** Ends the name a lock file is written under before it is linked into place. */
const TEMP_MARK = '.tmp';

/**
 * The lock directory of a store: `/dev/shm/dftfs-locks-<key>`, the key naming the store (its real
 * path, device and inode, so every agent sharing the store finds the same one), or
 * `<store>/locks` where /dev/shm is missing or not writable. Lock directories of stores that no
 * longer exist (a deleted DFTFS_HOME, a test's temp dir) are removed on the way.
 */
export function lockDirOf(storeRoot: string): string {
  fs.mkdirSync(storeRoot, { recursive: true });
  const real = fs.realpathSync(storeRoot);
  const st = fs.statSync(real);
  const key = createHash('sha256').update(`${real}\0${st.dev}\0${st.ino}`).digest('hex').slice(0, 24);
  try {
    fs.accessSync(SHM, fs.constants.W_OK);
    removeOrphanLockDirs();
    const dir = path.join(SHM, `dftfs-locks-${key}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(dir, STORE_MARK), real);
    return dir;
  } catch {
    return path.join(storeRoot, 'locks');
  }
}

function removeOrphanLockDirs(): void {
  for (const name of fs.readdirSync(SHM)) {
    if (!name.startsWith('dftfs-locks-')) continue;
    const dir = path.join(SHM, name);
    try {
      const store = fs.readFileSync(path.join(dir, STORE_MARK), 'utf8');
      if (!fs.existsSync(store)) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // Not ours to judge (no mark yet: being created) or removed meanwhile.
    }
  }
}

/**
 * One download per object per host: the first agent creates `<lock dir>/<hex>` (O_EXCL); the
 * host's other agents see it, wait for the object to land in the shared store, and hardlink it. A
 * lock whose process is gone is stale and is taken over.
 *
 * Lock files are a few bytes each, created and removed once per object fetched: on a RAM file
 * system that costs microseconds, where a create on a disk file system costs up to a millisecond
 * of system time (measured on the benchmark machine's ext4), more than fetching a 4 KiB file. So
 * they live in /dev/shm (emptied by a reboot, like the processes holding them), and taking and
 * dropping one is synchronous.
 */
export class HostLocks {
  readonly dir: string;

  constructor(storeRoot: string) {
    this.dir = lockDirOf(storeRoot);
    fs.mkdirSync(this.dir, { recursive: true });
  }

  private file(object: Digest): string {
    return path.join(this.dir, digestHex(object));
  }

  /**
   * True if this process now holds the lock; false if a live process does. The lock file appears
   * whole: written under a temp name, then linked to its name (which fails if that exists). Created
   * empty and then written, another agent could read it empty in between, take it for stale,
   * remove it and download the object a second time.
   */
  tryAcquire(info: LockInfo): boolean {
    const f = this.file(info.object);
    const tmp = `${f}.${process.pid}${TEMP_MARK}`;
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          fs.writeFileSync(tmp, JSON.stringify(info));
          fs.linkSync(tmp, f);
          return true;
        } catch (err) {
          if (errnoCode(err) === 'ENOENT') {
            fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 }); // removed meanwhile (its store was deleted and re-created)
            continue;
          }
          if (errnoCode(err) !== 'EEXIST') throw err;
        }
        const held = this.inspect(f);
        if (held === 'gone') continue; // released meanwhile: try again
        const holder = held.info;
        if (holder && alive(holder.pid) && holder.pid !== process.pid) return false;
        if (holder?.pid === process.pid && holder.agent !== info.agent) return false;
        // Stale: its process died mid-download (or the file is not a lock). Removed only if it is
        // still the file judged, not one another agent put there since.
        if (inodeOf(f) === held.ino) fs.rmSync(f, { force: true });
      }
      return false;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /** A lock file's holder (undefined if it is not a lock's JSON) and inode, or 'gone'. */
  private inspect(f: string): { info: LockInfo | undefined; ino: number } | 'gone' {
    let fd: number;
    try {
      fd = fs.openSync(f, 'r');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return 'gone';
      throw err;
    }
    try {
      const ino = fs.fstatSync(fd).ino;
      try {
        return { info: JSON.parse(fs.readFileSync(fd, 'utf8')) as LockInfo, ino };
      } catch {
        return { info: undefined, ino };
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  read(object: Digest): LockInfo | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.file(object), 'utf8')) as LockInfo;
    } catch {
      return undefined;
    }
  }

  release(object: Digest): void {
    try {
      fs.unlinkSync(this.file(object));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }

  /** Every lock held by a live process: the host's transfers in progress. */
  async list(): Promise<LockInfo[]> {
    const out: LockInfo[] = [];
    for (const name of await fsp.readdir(this.dir).catch(() => [] as string[])) {
      if (name === STORE_MARK || name.endsWith(TEMP_MARK)) continue;
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
