import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import Fuse from 'fuse-native';
import { DftfsError, errnoCode } from '../errors.js';
import { createLogger } from '../log.js';
import type { FuseOps } from './fuse-ops.js';

const log = createLogger('fuse');
const run = promisify(execFile);

/**
 * Kernel attribute and entry cache lifetime (s): after a new TOC generation is applied, a changed
 * path shows its new attributes within this bound. libfuse's default, stated explicitly.
 */
export const ATTR_TIMEOUT_S = 1;

export interface MountOptions {
  readOnly?: boolean;
  /** Lets other users than the one mounting see the tree (needs user_allow_other in /etc/fuse.conf for non-root). */
  allowOther?: boolean;
  /** libfuse's own trace of every request, on stderr. */
  debug?: boolean;
}

/** Mount points currently listed by the kernel (from /proc/self/mountinfo; octal escapes decoded). */
export async function mountedAt(mountpoint: string): Promise<string | undefined> {
  const want = path.resolve(mountpoint);
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const at = (f[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (at === want) {
      const dash = f.indexOf('-');
      return dash > 0 ? f[dash + 1] : 'unknown';
    }
  }
  return undefined;
}

/** Lazily unmounts a FUSE mount point (`fusermount -uz`): what to do by hand after a crash. */
export async function fusermountUnmount(mountpoint: string): Promise<void> {
  await run('fusermount', ['-uz', mountpoint]);
}

/**
 * Cleans a mount left by a crashed dftfs (its FUSE connection is gone: ENOTCONN) and refuses a
 * mount point that a live process still serves.
 */
export async function cleanStaleMount(mountpoint: string): Promise<boolean> {
  const fstype = await mountedAt(mountpoint);
  if (!fstype) return false;
  const err = await fsp.stat(mountpoint).then(() => undefined, (e: unknown) => e);
  const code = errnoCode(err);
  if (fstype.startsWith('fuse') && (code === 'ENOTCONN' || code === 'ECONNABORTED' || code === 'EIO')) {
    log.debug('stale mount at', mountpoint, code);
    await fusermountUnmount(mountpoint);
    return true;
  }
  throw new DftfsError('ERR_DFTFS_BUSY', `${mountpoint} is already a mount point (${fstype}) in use`, {
    hint: `unmount it first (fusermount -u ${mountpoint}), or pick another directory`,
  });
}

/**
 * Bytes the kernel may hand one FUSE write. Without `big_writes` libfuse 2 takes writes a page
 * (4 KiB) at a time: a job writing a 256 KiB output cost 64 round trips through this process.
 * 128 KiB is the most a libfuse 2 mount gets (the kernel's 32 pages per request).
 */
export const MAX_WRITE_BYTES = 128 * 1024;

/** fuse-native 2.2.6 has no option for big_writes: its `-o` list is extended here (see native-notes/fuse.md). */
class DftfsFuse extends Fuse {
  override _fuseOptions(): string {
    const base = super._fuseOptions();
    const ours = `big_writes,max_write=${MAX_WRITE_BYTES}`;
    return base ? `${base},${ours}` : `-o${ours}`;
  }
}

/** A live FUSE mount of dftfs ops. `unmount()` is idempotent. */
export class FuseMount {
  private unmounting: Promise<void> | undefined;

  private constructor(private readonly fuse: Fuse, readonly mountpoint: string) {}

  static async mount(mountpoint: string, ops: FuseOps, opts: MountOptions = {}): Promise<FuseMount> {
    const at = path.resolve(mountpoint);
    await cleanStaleMount(at);
    const st = await fsp.stat(at).catch(() => undefined);
    if (!st) throw new DftfsError('ERR_DFTFS_NOT_FOUND', `mount point ${at} does not exist`, { hint: `create it: mkdir -p ${at}` });
    if (!st.isDirectory()) throw new DftfsError('ERR_DFTFS_NOT_A_DIRECTORY', `mount point ${at} is not a directory`);
    const fuse = new DftfsFuse(at, ops, {
      fsname: 'dftfs',
      subtype: 'dftfs',
      // The kernel checks permission bits from getattr, so EACCES needs no code of ours.
      defaultPermissions: true,
      // Page cache kept across opens while size and mtime stay the same (auto_cache re-checks on open).
      autoCache: true,
      attrTimeout: ATTR_TIMEOUT_S,
      entryTimeout: ATTR_TIMEOUT_S,
      allowOther: opts.allowOther,
      debug: opts.debug,
      // Every op of ours is bounded (fetches by the mount's fetch timeout); fuse-native's own 15 s
      // cut-off would turn a slow but progressing fetch into ETIMEDOUT.
      timeout: false,
    });
    await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(mountError(at, err)) : resolve())));
    log.debug('mounted', at);
    return new FuseMount(fuse, at);
  }

  unmount(): Promise<void> {
    this.unmounting ??= new Promise<void>((resolve, reject) => {
      this.fuse.unmount((err) => (err ? reject(new DftfsError('ERR_DFTFS_IO', `could not unmount ${this.mountpoint}: ${err.message}`, { hint: `fusermount -uz ${this.mountpoint}` })) : resolve()));
    });
    return this.unmounting;
  }
}

function mountError(at: string, err: Error): DftfsError {
  return new DftfsError('ERR_DFTFS_IO', `could not mount ${at}: ${err.message}`, {
    hint: 'dftfs mount needs /dev/fuse, libfuse2 and fusermount (see native-notes/fuse.md)',
    cause: err,
  });
}
