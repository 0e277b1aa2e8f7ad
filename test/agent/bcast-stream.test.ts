import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DigestFeed, FEED_HOLD_MS, FEED_PAGE_DIGESTS, FeedFollower, UNKNOWN_DIGEST, newStreamName, parseFeedAnswer, parseStreamOrder, streamDesc } from '../../src/agent/bcast-stream.js';
import { DftfsError } from '../../src/errors.js';
import { digestBytes, type Digest } from '../../src/hash/index.js';
import { isObjectName, isStreamName } from '../../src/net/index.js';
import { parseGet } from '../../src/net/messages.js';

const MiB = 1 << 20;
const digestOf = (i: number): Digest => digestBytes(Buffer.from(`chunk ${i}`));

test('stream names: bcast: and 32 hex characters, accepted by GET beside digests', () => {
  const name = newStreamName();
  assert.ok(isStreamName(name) && isObjectName(name));
  assert.notEqual(newStreamName(), name);
  for (const bad of ['bcast:', 'bcast:abc', `bcast:${'g'.repeat(32)}`, `bcast:${'a'.repeat(33)}`, 'blake3:00']) assert.equal(isObjectName(bad), false, bad);
  const get = { id: 1, object: name, offset: 0, length: MiB, chunkDigest: digestOf(0) };
  assert.equal(parseGet(get).object, name);
  assert.throws(() => parseGet({ ...get, object: 'bcast:abc' }), /bad digest/);
});

test('a stream order is checked: size, chunk size within bounds, chunk count; its descriptor starts with every digest unknown', () => {
  const name = newStreamName();
  const order = parseStreamOrder({ name, size: 5 * MiB + 1, chunkBytes: MiB });
  const desc = streamDesc(order);
  assert.deepEqual(desc.chunks.map((c) => [c.chunkOffset, c.chunkSize]), [[0, MiB], [MiB, MiB], [2 * MiB, MiB], [3 * MiB, MiB], [4 * MiB, MiB], [5 * MiB, 1]]);
  assert.ok(desc.digest === UNKNOWN_DIGEST && desc.chunks.every((c) => c.chunkDigest === UNKNOWN_DIGEST));
  for (const bad of [{ name: 'x', size: 1, chunkBytes: MiB }, { name, size: 0, chunkBytes: MiB }, { name, size: 1.5, chunkBytes: MiB },
    { name, size: MiB, chunkBytes: 1024 }, { name, size: MiB, chunkBytes: 8 * MiB }, { name, size: 2 ** 40 * 8, chunkBytes: 4 * MiB }, null]) {
    assert.throws(() => parseStreamOrder(bad), (e: DftfsError) => e.code === 'ERR_DFTFS_PROTOCOL', JSON.stringify(bad));
  }
});

test('the digest feed: an ask for nothing new waits for the next digest; pages are bounded; the whole digest comes with the last one', async () => {
  const feed = new DigestFeed();
  const early = feed.answer(0);
  feed.add(0, digestOf(0));
  assert.deepEqual(await early, { from: 0, digests: [digestOf(0)] }, 'answered as soon as a digest came, not after the hold');
  const n = FEED_PAGE_DIGESTS + 10;
  for (let i = 1; i < n; i++) feed.add(i, digestOf(i));
  assert.throws(() => feed.add(n + 1, digestOf(0)), /out of order/);
  const whole = digestBytes(Buffer.from('whole'));
  feed.finish(whole);
  const first = await feed.answer(0);
  assert.equal(first.digests.length, FEED_PAGE_DIGESTS);
  assert.equal(first.digest, undefined, 'not with a page that leaves digests out');
  const second = await feed.answer(FEED_PAGE_DIGESTS);
  assert.equal(second.digests.length, 10);
  assert.equal(second.digest, whole);

  const failing = new DigestFeed();
  const waiting = failing.answer(0);
  failing.fail(new DftfsError('ERR_DFTFS_FILE_CHANGED', 'f: file shrank while being read'));
  await assert.rejects(waiting, { code: 'ERR_DFTFS_FILE_CHANGED' });
});

test('an ask for nothing new is answered empty after the hold', async () => {
  const feed = new DigestFeed();
  const t0 = performance.now();
  assert.deepEqual(await feed.answer(0), { from: 0, digests: [] });
  assert.ok(performance.now() - t0 >= FEED_HOLD_MS - 50);
});

test('a feed answer from the network is checked against what was asked', () => {
  assert.deepEqual(parseFeedAnswer({ from: 2, digests: [digestOf(2)] }, 2, 3), { from: 2, digests: [digestOf(2)] });
  for (const bad of [{ from: 1, digests: [] }, { from: 2, digests: [digestOf(2), digestOf(3)] }, { from: 2, digests: ['blake3:zz'] }, { from: 2, digests: 'x' }, { from: 2, digests: [], digest: 'nope' }]) {
    assert.throws(() => parseFeedAnswer(bad, 2, 3), (e: DftfsError) => e.code === 'ERR_DFTFS_PROTOCOL', JSON.stringify(bad));
  }
});

test('a follower fills the descriptor in as the feed delivers, tells its listeners, and ends with the whole digest', async () => {
  const feed = new DigestFeed();
  const desc = streamDesc({ name: newStreamName(), size: 3 * MiB, chunkBytes: MiB });
  const follower = new FeedFollower(desc, async (from) => ({ ...(await feed.answer(from)) }));
  let heard = 0;
  follower.onMore(() => heard++);
  assert.equal(follower.known(0), false);
  feed.add(0, digestOf(0));
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(follower.known(0) && !follower.known(1));
  assert.equal(desc.chunks[0]!.chunkDigest, digestOf(0));
  assert.equal(heard, 1);
  feed.add(1, digestOf(1));
  feed.add(2, digestOf(2));
  const whole = digestBytes(Buffer.from('whole'));
  feed.finish(whole);
  assert.equal(await follower.digest, whole);
  assert.equal(desc.digest, whole);
  assert.deepEqual(desc.chunks.map((c) => c.chunkDigest), [digestOf(0), digestOf(1), digestOf(2)]);
});
