import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { blake3Backend } from '../../src/hash/blake3.js';
import { HashPool, digestBytes, hashInTurns, isDigest, parseDigest } from '../../src/hash/index.js';
import { b3sum, b3sumBytes, pseudoRandom, tempDir } from '../helpers.js';

test('digestBytes equals b3sum, for empty, small and multi-MiB inputs', (t) => {
  const dir = tempDir(t);
  for (const size of [0, 1, 1023, 1024, 1025, 5 * 1024 * 1024 + 7]) {
    const bytes = pseudoRandom(size, size + 1);
    assert.equal(digestBytes(bytes), b3sumBytes(dir, bytes), `size ${size}`);
  }
});

test('the native BLAKE3 is the one in use here, and the wasm fallback (DFTFS_BLAKE3=wasm) gives the same digests', (t) => {
  // This machine is linux-x64 with glibc, for which @napi-rs/blake-hash ships a binary: falling
  // back here would mean the binary is missing or broken, and hashing ~7x slower.
  assert.equal(blake3Backend, 'native');
  const dir = tempDir(t);
  const sizes = [0, 1, 1024, 1025, 3 * 1024 * 1024 + 11];
  const files = sizes.map((size) => {
    const f = path.join(dir, `in-${size}`);
    fs.writeFileSync(f, pseudoRandom(size, size + 3));
    return f;
  });
  const script = `
    const { blake3Backend } = await import(${JSON.stringify(new URL('../../src/hash/blake3.js', import.meta.url).href)});
    const { digestBytes, HashPool } = await import(${JSON.stringify(new URL('../../src/hash/index.js', import.meta.url).href)});
    const fs = await import('node:fs');
    const files = ${JSON.stringify(files)};
    const pool = new HashPool(1);
    const viaPool = [];
    for (const f of files) {
      const size = fs.statSync(f).size;
      viaPool.push(size ? (await pool.submit({ path: f, offset: 0, length: size, chunkBytes: 1 << 20, whole: true, chunks: false })).wholeDigest : undefined);
    }
    await pool.close();
    console.log(JSON.stringify({ backend: blake3Backend, inMemory: files.map((f) => digestBytes(fs.readFileSync(f))), viaPool }));`;
  const scriptFile = path.join(dir, 'digests.mjs');
  fs.writeFileSync(scriptFile, script);
  const out = JSON.parse(execFileSync(process.execPath, [scriptFile], { env: { ...process.env, DFTFS_BLAKE3: 'wasm' }, encoding: 'utf8' })) as { backend: string; inMemory: string[]; viaPool: Array<string | null> };
  assert.equal(out.backend, 'wasm');
  const want = files.map((f) => b3sum(f));
  assert.deepEqual(out.inMemory, want);
  assert.deepEqual(out.viaPool, want.map((d, i) => (sizes[i] ? d : null)));
  assert.deepEqual(files.map((f) => digestBytes(fs.readFileSync(f))), want);
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

test('with an inline budget, the pool hashes small work on the calling thread and starts its threads only past the budget', async (t) => {
  const dir = tempDir(t);
  const pool = new HashPool(2, { inlineBytes: 64 * 1024 });
  t.after(() => pool.close());
  const bytes = pseudoRandom(100 * 1024, 9);
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, bytes);
  const small = await pool.submit({ path: file, offset: 0, length: 40 * 1024, chunkBytes: 16 * 1024, whole: true, chunks: true });
  const files = await pool.submitFiles([{ path: file, length: 10 * 1024 }, { path: path.join(dir, 'nope'), length: 5 }]);
  assert.equal(pool.threadsStarted, false, '50 KiB of work fits a 64 KiB budget: no thread started');
  assert.equal(small.wholeDigest, b3sumBytes(dir, bytes.subarray(0, 40 * 1024)));
  assert.deepEqual(small.chunkDigests, [0, 1, 2].map((i) => b3sumBytes(dir, bytes.subarray(i * 16 * 1024, Math.min(40, (i + 1) * 16) * 1024))));
  assert.deepEqual(files.files[0], { digest: b3sumBytes(dir, bytes.subarray(0, 10 * 1024)), bytesRead: 10 * 1024 });
  assert.equal((files.files[1] as { error: { code: string } }).error.code, 'ENOENT', 'inline errors come back as codes too');
  // 50 KiB more does not fit: the threads start and take it.
  const big = await pool.submit({ path: file, offset: 0, length: bytes.length, chunkBytes: bytes.length, whole: false, chunks: true });
  assert.equal(pool.threadsStarted, true);
  assert.deepEqual(big.chunkDigests, [b3sumBytes(dir, bytes)]);
});

test('hashInTurns: chunk digests in order as it goes and the whole digest, all equal to b3sum; a file shorter than said is refused', async (t) => {
  const dir = tempDir(t);
  const chunk = 1 << 20;
  const bytes = pseudoRandom(9 * chunk + 4321, 11);
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, bytes);
  const seen: Array<[number, string]> = [];
  let turns = 0;
  const ticker = setInterval(() => turns++, 0);
  const r = await hashInTurns(file, bytes.length, chunk, (i, d) => seen.push([i, d])).finally(() => clearInterval(ticker));
  assert.equal(r.digest, b3sum(file));
  const want = Array.from({ length: 10 }, (_, i) => b3sumBytes(dir, bytes.subarray(i * chunk, (i + 1) * chunk)));
  assert.deepEqual(r.chunkDigests, want);
  assert.deepEqual(seen, want.map((d, i) => [i, d]), 'each digest handed out once, in order');
  assert.ok(turns > 0, 'the event loop ran while it hashed');

  await assert.rejects(hashInTurns(file, bytes.length + 1, chunk, () => undefined), { code: 'ERR_DFTFS_FILE_CHANGED' });
});
