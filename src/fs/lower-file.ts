import fs from 'node:fs';
import fsp from 'node:fs/promises';
import type { Agent, ObjectDesc, PeerAddr } from '../agent/index.js';
import { DftfsError } from '../errors.js';
import { createLogger } from '../log.js';
import { SYNC_IO_MAX_BYTES } from '../store/index.js';

const log = createLogger('fuse');

/** How often a read re-checks for its chunks when no partial object is visible yet (another agent of the host fetches it). */
const HOST_WAIT_POLL_MS = 25;

/** Where a mount gets the bytes of files it did not write: the host store, fetched through the agent. */
export interface ObjectSource {
  /** Starts fetching objects (no wait); the mount calls it on `open`, for the file and its small siblings. */
  prefetch(descs: ObjectDesc[]): void;
  /** Opens an object for reading; reads wait for the chunks they cover, at most `timeoutMs` each. */
  open(desc: ObjectDesc): LowerFile;
  /** Waits until the whole object is in the host store and returns its path (copy-up before a write). */
  whole(desc: ObjectDesc): Promise<string>;
}

export interface LowerFile {
  read(buf: Buffer, len: number, pos: number): Promise<number>;
  close(): Promise<void>;
}

const timeoutError = (desc: ObjectDesc, ms: number) => new DftfsError('ERR_DFTFS_TIMEOUT', `the chunks of ${desc.digest} did not arrive within ${ms / 1000} s`, {
  hint: 'is the driver (or another holder of the file) still running and reachable?',
});

/**
 * Serves reads of remote files from the host store, or from the object while it is still arriving:
 * a read returns as soon as the chunks it covers are verified, before the whole file is here.
 */
export class AgentObjectSource implements ObjectSource {
  /** `holders()`: agents known to hold every object of the current TOC (its origin). */
  constructor(private readonly agent: Agent, private readonly timeoutMs: number, private readonly holders: () => PeerAddr[] = () => []) {}

  private fetch(desc: ObjectDesc) {
    return this.agent.fetch(desc, { hints: this.holders(), descFromOrigin: true });
  }

  /** Starts fetching objects (small ones in one batch from the TOC's origin); failures are left to the reads. */
  prefetch(descs: ObjectDesc[]): void {
    const todo = descs.filter((d) => d.size > 0 && !this.agent.store.has(d.digest));
    if (todo.length) this.agent.fetchMany(todo, { hints: this.holders(), descFromOrigin: true }).catch((err: Error) => log.debug('prefetch failed', err.message));
  }

  async whole(desc: ObjectDesc): Promise<string> {
    if (desc.size === 0) return '';
    if (!this.agent.store.has(desc.digest)) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(timeoutError(desc, this.timeoutMs)), this.timeoutMs); });
      try {
        await Promise.race([this.fetch(desc), deadline]);
      } finally {
        clearTimeout(timer);
      }
    }
    return this.agent.store.objectPath(desc.digest);
  }

  open(desc: ObjectDesc): LowerFile {
    const agent = this.agent;
    const fetch = () => this.fetch(desc);
    const timeoutMs = this.timeoutMs;
    let fh: Promise<fsp.FileHandle> | undefined;
    /** A small object is read synchronously (see SYNC_IO_MAX_BYTES). */
    const small = desc.size <= SYNC_IO_MAX_BYTES;
    let fd: number | undefined;
    let fetching: Promise<unknown> | undefined;
    let failed: Error | undefined;

    const startFetch = () => {
      failed = undefined;
      fetching = fetch().then(() => undefined, (err: Error) => { failed = err; });
    };
    const fromStore = async (buf: Buffer, len: number, pos: number) => {
      if (small) {
        fd ??= fs.openSync(agent.store.objectPath(desc.digest), 'r');
        return fs.readSync(fd, buf, 0, len, pos);
      }
      // One open for concurrent reads (the kernel's readahead sends several at once): each
      // awaiting its own open would leave all but the last handle to the garbage collector.
      if (!fh) {
        const opening = fsp.open(agent.store.objectPath(desc.digest), 'r');
        fh = opening;
        opening.catch(() => { if (fh === opening) fh = undefined; }); // the next read tries again
      }
      return (await (await fh).read(buf, 0, len, pos)).bytesRead;
    };

    return {
      async read(buf, len, pos) {
        if (pos >= desc.size) return 0;
        len = Math.min(len, desc.size - pos);
        const deadline = performance.now() + timeoutMs;
        for (;;) {
          if (fh || fd !== undefined || agent.store.has(desc.digest)) return fromStore(buf, len, pos);
          // A fetch that failed earlier is tried again: a source may have come back since.
          if (!fetching || failed) startFetch();
          const left = deadline - performance.now();
          if (left <= 0) throw failed ?? timeoutError(desc, timeoutMs);
          const partial = agent.partial(desc.digest);
          if (partial) {
            const missing = partial.chunksCovering(pos, len).filter((i) => !partial.has(i));
            if (missing.length === 0) {
              const n = await partial.readAt(buf, len, pos).catch(() => undefined);
              if (n !== undefined) return n;
              // Being committed right now: the fetch settles once the object is in the store.
              // (Looping without waiting here would starve the event loop of the rename's completion.)
              await Promise.race([fetching, new Promise((r) => setTimeout(r, Math.min(HOST_WAIT_POLL_MS, left)))]);
              continue;
            }
            await Promise.race([partial.waitFor(missing[0]!, left), fetching]);
          } else {
            await Promise.race([fetching, new Promise((r) => setTimeout(r, Math.min(HOST_WAIT_POLL_MS, left)))]);
          }
          if (failed && !agent.store.has(desc.digest)) throw failed;
        }
      },
      async close() {
        if (fd !== undefined) fs.closeSync(fd);
        fd = undefined;
        const opened = fh;
        fh = undefined;
        await (await opened?.catch(() => undefined))?.close();
      },
    };
  }
}
