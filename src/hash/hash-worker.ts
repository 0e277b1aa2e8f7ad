/**
 * Worker thread body: reads a byte range of a file and digests it. Reads are synchronous: the
 * thread has nothing else to do, and a sync read avoids a round trip through libuv's pool.
 */
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import blake3 from 'blake3-wasm';
import type { HashJob, HashResult } from './hash-job.js';

/** Read granularity: large enough to amortise the copy into wasm memory, small enough for L2. */
const READ_BYTES = 1 << 20;
const buf = Buffer.allocUnsafe(READ_BYTES);

function run(job: HashJob): HashResult {
  const fd = fs.openSync(job.path, 'r');
  try {
    const whole = job.whole ? blake3.createHash() : undefined;
    const chunkDigests: string[] = [];
    let bytesRead = 0;
    let pos = job.offset;
    const end = job.offset + job.length;
    while (pos < end) {
      const chunkEnd = Math.min(end, pos + job.chunkBytes);
      const chunk = job.chunks ? blake3.createHash() : undefined;
      while (pos < chunkEnd) {
        const n = fs.readSync(fd, buf, 0, Math.min(READ_BYTES, chunkEnd - pos), pos);
        if (n === 0) throw Object.assign(new Error(`${job.path}: file shrank while being read`), { code: 'ERR_DFTFS_FILE_CHANGED' });
        const view = buf.subarray(0, n);
        chunk?.update(view);
        whole?.update(view);
        pos += n;
        bytesRead += n;
      }
      if (chunk) chunkDigests.push('blake3:' + chunk.digest('hex'));
    }
    const result: HashResult = { id: job.id, chunkDigests, bytesRead };
    if (whole) result.wholeDigest = 'blake3:' + whole.digest('hex');
    return result;
  } finally {
    fs.closeSync(fd);
  }
}

parentPort!.on('message', (job: HashJob) => {
  let result: HashResult;
  try {
    result = run(job);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    result = { id: job.id, chunkDigests: [], bytesRead: 0, error: { code: e.code ?? 'EIO', message: e.message } };
  }
  parentPort!.postMessage(result);
});
