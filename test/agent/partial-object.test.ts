import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { ObjectDesc } from '../../src/agent/index.js';
import { PartialObject } from '../../src/agent/partial-object.js';
import { digestBytes } from '../../src/hash/index.js';
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
