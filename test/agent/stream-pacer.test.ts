import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { StreamPacer } from '../../src/agent/stream-pacer.js';
import { hashInTurns, type Digest } from '../../src/hash/index.js';
import { BufferPool } from '../../src/net/index.js';
import { b3sum, b3sumBytes, pseudoRandom, tempDir, until } from '../helpers.js';

const KiB = 1024;
const CHUNK = 64 * KiB;

function fixture(t: import('node:test').TestContext, chunks: number) {
  const dir = tempDir(t);
  const bytes = pseudoRandom(chunks * CHUNK - 100, 21);
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, bytes);
  const chunk = (i: number) => bytes.subarray(i * CHUNK, (i + 1) * CHUNK);
  return { dir, bytes, file, chunk };
}

test('a paced hash stays just ahead of the chunks asked for, and hands each asked chunk over from the bytes it hashed', async (t) => {
  const { dir, bytes, file, chunk } = fixture(t, 10);
  const pacer = new StreamPacer(CHUNK, new BufferPool(4 * 1024 * KiB, 4), 2, 60_000);
  t.after(() => pacer.close());
  const seen: Digest[] = [];
  const hashing = hashInTurns(file, bytes.length, CHUNK, (_i, d) => seen.push(d), pacer);

  await until('the first chunks hashed', () => seen.length === 2);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen.length, 2, 'nothing asked for yet: two ahead, no more');
  assert.equal(pacer.take(5 * CHUNK, CHUNK), undefined, 'a chunk not hashed yet is not handed over');
  await until('hashing moves on once chunk 5 is asked for', () => seen.length === 8);

  const handed = pacer.take(6 * CHUNK, CHUNK);
  assert.ok(handed?.equals(chunk(6)), 'chunk 6 from memory, the bytes it was hashed from');
  assert.equal(pacer.take(6 * CHUNK, CHUNK), undefined, 'once');
  assert.equal(pacer.take(CHUNK + 1, CHUNK), undefined, 'an offset off the grid');
  await until('hashing moves on', () => seen.length === 9);
  assert.ok(pacer.take(7 * CHUNK, CHUNK)?.equals(chunk(7)));
  await until('the last chunk hashed', () => seen.length === 10);
  const last = pacer.take(9 * CHUNK, bytes.length - 9 * CHUNK);
  assert.ok(last?.equals(chunk(9)), 'the short last chunk');

  const r = await hashing;
  assert.equal(r.digest, b3sum(file));
  assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => b3sumBytes(dir, chunk(i))));
});

test('with nothing asked for a while, a paced hash runs to its end', async (t) => {
  const { bytes, file } = fixture(t, 6);
  const pacer = new StreamPacer(CHUNK, new BufferPool(4 * 1024 * KiB, 4), 1, 100);
  t.after(() => pacer.close());
  const r = await hashInTurns(file, bytes.length, CHUNK, () => undefined, pacer);
  assert.equal(r.digest, b3sum(file));
  assert.equal(r.chunkDigests.length, 6);
});
