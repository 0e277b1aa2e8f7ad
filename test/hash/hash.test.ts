import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { HashPool, digestBytes, isDigest, parseDigest } from '../../src/hash/index.js';
import { b3sumBytes, pseudoRandom, tempDir } from '../helpers.js';

test('digestBytes equals b3sum, for empty, small and multi-MiB inputs', (t) => {
  const dir = tempDir(t);
  for (const size of [0, 1, 1023, 1024, 1025, 5 * 1024 * 1024 + 7]) {
    const bytes = pseudoRandom(size, size + 1);
    assert.equal(digestBytes(bytes), b3sumBytes(dir, bytes), `size ${size}`);
  }
});

test('parseDigest accepts only blake3:<64 lowercase hex>', () => {
  const good = digestBytes(Buffer.from('x'));
  assert.equal(parseDigest(good), good);
  for (const bad of ['', 'blake3:', good.toUpperCase(), good.slice(0, -1), 'sha256:' + good.slice(7), good + '0']) {
    assert.equal(isDigest(bad), false, bad);
    assert.throws(() => parseDigest(bad), { code: 'ERR_DFTFS_USAGE' });
  }
});

test('the hash pool digests ranges in worker threads, chunk by chunk and whole', async (t) => {
  const dir = tempDir(t);
  const pool = new HashPool(2);
  t.after(() => pool.close());
  const bytes = pseudoRandom(3 * 1000 + 17, 7);
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, bytes);
  const r = await pool.submit({ path: file, offset: 500, length: 2500, chunkBytes: 1000, whole: true, chunks: true });
  assert.equal(r.error, undefined);
  assert.equal(r.bytesRead, 2500);
  assert.deepEqual(r.chunkDigests, [
    b3sumBytes(dir, bytes.subarray(500, 1500)),
    b3sumBytes(dir, bytes.subarray(1500, 2500)),
    b3sumBytes(dir, bytes.subarray(2500, 3000)),
  ]);
  assert.equal(r.wholeDigest, b3sumBytes(dir, bytes.subarray(500, 3000)));
});

test('the hash pool reports I/O errors as codes and a file that shrank under it', async (t) => {
  const dir = tempDir(t);
  const pool = new HashPool(1);
  t.after(() => pool.close());
  const missing = await pool.submit({ path: path.join(dir, 'nope'), offset: 0, length: 10, chunkBytes: 10, whole: false, chunks: true });
  assert.equal(missing.error?.code, 'ENOENT');
  const file = path.join(dir, 'short');
  fs.writeFileSync(file, 'abc');
  const shrank = await pool.submit({ path: file, offset: 0, length: 10, chunkBytes: 10, whole: false, chunks: true });
  assert.equal(shrank.error?.code, 'ERR_DFTFS_FILE_CHANGED');
});

test('close is idempotent and refuses new work', async () => {
  const pool = new HashPool(1);
  const a = pool.close();
  assert.equal(pool.close(), a);
  await a;
  await assert.rejects(pool.submit({ path: '/dev/null', offset: 0, length: 0, chunkBytes: 1, whole: true, chunks: false }), { code: 'ERR_DFTFS_CLOSED' });
});
