import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { ObjectDesc } from '../../src/agent/index.js';
import { PartialObject } from '../../src/agent/partial-object.js';
import { digestBytes } from '../../src/hash/index.js';
import { BufferPool } from '../../src/net/index.js';
import { ObjectStore } from '../../src/store/index.js';
import { pseudoRandom, tempDir } from '../helpers.js';

const MiB = 1 << 20;

/** A descriptor of `bytes` in chunks of `chunk` bytes, as the indexer makes it. */
function describe(bytes: Buffer, chunk: number): ObjectDesc {
  const chunks = [];
  for (let off = 0; off < bytes.length; off += chunk) {
    const part = bytes.subarray(off, off + chunk);
    chunks.push({ chunkOffset: off, chunkSize: part.length, chunkDigest: digestBytes(part) });
  }
  return { digest: digestBytes(bytes), size: bytes.length, chunks };
}

async function receive(store: ObjectStore, desc: ObjectDesc, bytes: Buffer, order: number[]): Promise<void> {
  const p = await new PartialObject(store, desc).open();
  for (const i of order) {
    const c = desc.chunks[i]!;
    await p.write(i, bytes.subarray(c.chunkOffset, c.chunkOffset + c.chunkSize));
  }
  await p.commit();
}

for (const size of [100 * 1024, 3 * MiB]) {
  test(`partial object of one chunk (${size} bytes): stored under its digest, and a descriptor naming another digest is refused`, async (t) => {
    const store = await new ObjectStore(path.join(tempDir(t), 'store')).open();
    const bytes = pseudoRandom(size, size);
    const desc = describe(bytes, 4 * MiB);
    assert.equal(desc.chunks.length, 1);
    await receive(store, desc, bytes, [0]);
    assert.ok(fs.readFileSync(store.objectPath(desc.digest)).equals(bytes));

    // The chunk is genuine, the name is not: its verified chunk digest stands for the whole file.
    const other = pseudoRandom(size, size + 1);
    const lie = { ...describe(other, 4 * MiB), digest: digestBytes(Buffer.from('something else')) };
    await assert.rejects(receive(store, lie, other, [0]), { code: 'ERR_DFTFS_DIGEST_MISMATCH' });
    assert.equal(store.has(lie.digest), false);
    assert.deepEqual(fs.readdirSync(path.join(store.root, 'tmp')), []);
  });
}

test('partial object of several chunks, in any order: the whole-file digest is checked', async (t) => {
  const store = await new ObjectStore(path.join(tempDir(t), 'store')).open();
  const bytes = pseudoRandom(5 * MiB + 123, 7);
  const desc = describe(bytes, MiB);
  await receive(store, desc, bytes, [3, 0, 5, 1, 4, 2]);
  assert.ok(fs.readFileSync(store.objectPath(desc.digest)).equals(bytes));

  const lie = { ...desc, digest: digestBytes(Buffer.from('not these bytes')) };
  await assert.rejects(receive(store, lie, bytes, [0, 1, 2, 3, 4, 5]), { code: 'ERR_DFTFS_DIGEST_MISMATCH' });
  assert.equal(store.has(lie.digest), false);
});

test('partial object with a descriptor the origin made: the verified chunks stand for the file (its digest is not recomputed)', async (t) => {
  const store = await new ObjectStore(path.join(tempDir(t), 'store')).open();
  const bytes = pseudoRandom(3 * MiB, 9);
  const desc = describe(bytes, MiB);
  const p = await new PartialObject(store, desc, true).open();
  for (const i of [2, 0, 1]) {
    const c = desc.chunks[i]!;
    // A chunk that is not the descriptor's is still refused, and nothing of it is written.
    await assert.rejects(p.write(i, pseudoRandom(c.chunkSize, 100 + i)), { code: 'ERR_DFTFS_DIGEST_MISMATCH' });
    assert.equal(p.has(i), false);
    await p.write(i, bytes.subarray(c.chunkOffset, c.chunkOffset + c.chunkSize));
  }
  await p.commit();
  assert.ok(fs.readFileSync(store.objectPath(desc.digest)).equals(bytes));
  // The trust boundary, stated: such a descriptor's name is taken as given. Descriptors from peers
  // (get DIGEST, a job's outputs) never take this path (see the test above).
  const named = { ...describe(pseudoRandom(MiB + 1, 10), MiB), digest: digestBytes(Buffer.from('a name the origin gave')) };
  const q = await new PartialObject(store, named, true).open();
  const other = pseudoRandom(MiB + 1, 10);
  await q.write(0, other.subarray(0, MiB));
  await q.write(1, other.subarray(MiB));
  await q.commit();
  assert.ok(store.has(named.digest));
});

test('a chunk a peer waited for is handed over in memory once, verified, before it is written; one nobody waited for is read from the file', async (t) => {
  const store = await new ObjectStore(path.join(tempDir(t), 'store')).open();
  const bytes = pseudoRandom(3 * MiB, 11);
  const desc = describe(bytes, MiB);
  const p = await new PartialObject(store, desc, true, desc.digest, new BufferPool(4 * MiB, 4)).open();
  t.after(() => p.abort());
  const chunk = (i: number) => bytes.subarray(i * MiB, (i + 1) * MiB);

  const forwarded = p.waitFor(1, 5000, undefined, true);
  const local = p.waitFor(2, 5000); // a mount's read: it reads the file
  // Bytes that are not the chunk wake nobody and leave nothing to take.
  await assert.rejects(p.write(1, pseudoRandom(MiB, 12)), { code: 'ERR_DFTFS_DIGEST_MISMATCH' });
  assert.equal(p.takeHandoff(1), undefined);
  const second = p.waitFor(1, 5000, undefined, true); // another asker of the same chunk
  let secondWoke = false;
  void second.then(() => { secondWoke = true; });
  const arriving = Buffer.from(chunk(1));
  const writing = p.write(1, arriving);
  // The first asker is woken once the chunk checks out, while it is still being written here.
  assert.equal(await forwarded, true);
  assert.equal(p.has(1), false, 'woken before the write to the file completed');
  assert.equal(secondWoke, false, 'the second asker waits for the write');
  await writing;
  arriving.fill(0); // the writer reuses its buffer once write settles
  const handed = p.takeHandoff(1);
  assert.ok(handed?.equals(chunk(1)), 'the waiter takes the verified chunk from memory');
  assert.equal(p.takeHandoff(1), undefined, 'and only once');
  assert.equal(await second, true);
  assert.ok((await p.read(1)).equals(chunk(1)), 'the second asker reads it from the file');

  // An asker that begins waiting while the chunk is being written is woken once it is written.
  const writing2 = p.write(2, chunk(2));
  const during = p.waitFor(2, 5000, undefined, true);
  await writing2;
  assert.equal(await during, true);
  assert.equal(await local, true);
  assert.equal(p.takeHandoff(2), undefined);
  assert.ok((await p.read(2)).equals(chunk(2)));
  await p.write(0, chunk(0));
  assert.equal(p.takeHandoff(0), undefined);
  await p.commit();
  assert.ok(fs.readFileSync(store.objectPath(desc.digest)).equals(bytes));
});

test('once a chain\'s next hop has asked for a chunk, the latest chunks written are kept for the next asker, the oldest copies going back to the pool', async (t) => {
  const store = await new ObjectStore(path.join(tempDir(t), 'store')).open();
  const bytes = pseudoRandom(7 * MiB, 13);
  const desc = describe(bytes, MiB);
  const pool = new BufferPool(4 * MiB, 8);
  const p = await new PartialObject(store, desc, true, desc.digest, pool).open();
  t.after(() => p.abort());
  const chunk = (i: number) => bytes.subarray(i * MiB, (i + 1) * MiB);

  // No next hop has asked yet: a chunk written is only in the file.
  await p.write(0, chunk(0));
  assert.equal(p.takeHandoff(0), undefined);
  p.chainAsked();
  // Asked for after it landed (a chain's next hop one chunk behind): taken from memory.
  for (const i of [1, 2, 3, 4, 5, 6]) {
    const arriving = Buffer.from(chunk(i));
    await p.write(i, arriving);
    arriving.fill(0); // the receiver reuses its buffer
  }
  // Chunk 1's copy went back to the pool when chunk 5 was kept and carried chunk 6; chunk 2's is there now.
  assert.equal(pool.idle, 1, 'the oldest copies nobody took went back to the pool');
  assert.equal(p.takeHandoff(1), undefined);
  assert.equal(p.takeHandoff(2), undefined);
  for (const i of [3, 4, 5, 6]) assert.ok(p.takeHandoff(i)?.equals(chunk(i)), `chunk ${i} from memory`);

  // Chunks landing in one turn: the copy an asker was woken for stays until the asker takes it,
  // however many later chunks are kept meanwhile (the file does not hold it yet).
  const q = await new PartialObject(store, desc, true, desc.digest, pool).open();
  t.after(() => q.abort());
  q.chainAsked();
  const woken = q.waitFor(0, 5000, undefined, true);
  const writes = [0, 1, 2, 3, 4, 5, 6].map((i) => q.write(i, chunk(i)));
  assert.equal(await woken, true);
  assert.ok(q.takeHandoff(0)?.equals(chunk(0)), 'the woken asker still finds its copy');
  await Promise.all(writes);
  await p.commit();
  assert.ok(fs.readFileSync(store.objectPath(desc.digest)).equals(bytes));
});
