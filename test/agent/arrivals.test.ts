import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Arrivals } from '../../src/agent/arrivals.js';
import { digestBytes } from '../../src/hash/index.js';

const obj = (n: number, size = 1000) => {
  const bytes = Buffer.alloc(size, n);
  return { bytes, digest: digestBytes(bytes) };
};

test('arrivals: an asker waits for an object of the batch, gets it as it arrives, and is let go when the batch ends', async () => {
  const [a, b, c, stranger] = [obj(1), obj(2), obj(3), obj(4)];
  const arr = new Arrivals(new Set([a.digest, b.digest, c.digest]), 2500);
  const waiting = arr.take(a.digest, 5000);
  arr.arrived(a.digest, a.bytes);
  assert.deepEqual(await waiting, a.bytes);
  assert.equal(await arr.take(stranger.digest, 5000), undefined, 'not in the batch: not waited for');
  assert.equal(await arr.take(b.digest, 20), undefined, 'not there within the wait');
  // Kept up to the bound, oldest dropped first.
  arr.arrived(b.digest, b.bytes);
  arr.arrived(c.digest, c.bytes);
  assert.equal(await arr.take(a.digest, 0), undefined, 'the oldest was dropped');
  assert.deepEqual(await arr.take(c.digest, 0), c.bytes);
  const late = new Arrivals(new Set([a.digest]));
  const asked = late.take(a.digest, 60_000);
  late.end();
  assert.equal(await asked, undefined, 'the batch ended without it');
  const gone = new AbortController();
  const aborted = new Arrivals(new Set([b.digest])).take(b.digest, 60_000, gone.signal);
  gone.abort();
  assert.equal(await aborted, undefined);
});
