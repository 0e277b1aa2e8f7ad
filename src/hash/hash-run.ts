/**
 * Runs hash jobs: in a pool thread (hash-worker.ts), or on the calling thread while a pool's work
 * is too small to pay for starting threads (HashPoolOptions.inlineBytes). Reads are synchronous:
 * a pool thread has nothing else to do, and a sync read avoids a round trip through libuv's pool.
 */
import fs from 'node:fs';
import { newBlake3 } from './blake3.js';
import type { FilesJob, FilesResult, HashError, HashJob, HashResult, RangeJob } from './hash-job.js';

/** Read granularity: large enough to amortise a call into the hasher, small enough for L2. */
const READ_BYTES = 1 << 20;
let buf: Buffer | undefined;

function runRange(job: RangeJob): HashResult {
  buf ??= Buffer.allocUnsafe(READ_BYTES);
  const fd = fs.openSync(job.path, 'r');
  try {
    const whole = job.whole ? newBlake3() : undefined;
    const chunkDigests: string[] = [];
    let bytesRead = 0;
    let pos = job.offset;
    const end = job.offset + job.length;
    while (pos < end) {
      const chunkEnd = Math.min(end, pos + job.chunkBytes);
      const chunk = job.chunks ? newBlake3() : undefined;
      while (pos < chunkEnd) {
        const n = fs.readSync(fd, buf, 0, Math.min(READ_BYTES, chunkEnd - pos), pos);
        if (n === 0) throw Object.assign(new Error(`${job.path}: file shrank while being read`), { code: 'ERR_DFTFS_FILE_CHANGED' });
        const view = buf.subarray(0, n);
        chunk?.update(view);
        whole?.update(view);
        pos += n;
        bytesRead += n;
      }
      if (chunk) chunkDigests.push('blake3:' + chunk.hex());
    }
    const result: HashResult = { id: job.id, chunkDigests, bytesRead };
    if (whole) result.wholeDigest = 'blake3:' + whole.hex();
    return result;
  } finally {
    fs.closeSync(fd);
  }
}

const asError = (err: unknown): HashError => {
  const e = err as NodeJS.ErrnoException;
  return { code: e.code ?? 'EIO', message: e.message };
};

function runFiles(job: FilesJob): FilesResult {
  return {
    id: job.id,
    files: job.files.map((f) => {
      try {
        const r = runRange({ kind: 'range', id: job.id, path: f.path, offset: 0, length: f.length, chunkBytes: Math.max(1, f.length), whole: false, chunks: true });
        return { digest: r.chunkDigests[0]!, bytesRead: r.bytesRead };
      } catch (err) {
        return { error: asError(err) };
      }
    }),
  };
}

/** Runs one job; failures come back in the result (as codes), never as a throw. */
export function runHashJob(job: HashJob): HashResult | FilesResult {
  if (job.kind === 'files') return runFiles(job);
  try {
    return runRange(job);
  } catch (err) {
    return { id: job.id, chunkDigests: [], bytesRead: 0, error: asError(err) };
  }
}

/** Bytes a job reads. */
export function jobBytes(job: Omit<RangeJob, 'id'> | Omit<FilesJob, 'id'>): number {
  return job.kind === 'files' ? job.files.reduce((n, f) => n + f.length, 0) : job.length;
}
