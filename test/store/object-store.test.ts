import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { digestBytes } from '../../src/hash/index.js';
import { ObjectStore } from '../../src/store/index.js';
import { b3sum, pseudoRandom, tempDir } from '../helpers.js';

const objectFiles = (root: string) =>
  fs.readdirSync(path.join(root, 'objects'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());

test('objects are stored by BLAKE3 digest, fanned out by prefix, read-only', async (t) => {
  const store = await new ObjectStore(tempDir(t)).open();
  const bytes = pseudoRandom(100_000, 3);
  const put = await store.putBytes(bytes);
  assert.equal(put.written, true);
  const p = store.objectPath(put.digest);
  assert.match(p, /objects\/[0-9a-f]{2}\/[0-9a-f]{62}$/);
  assert.equal(b3sum(p), put.digest);
  assert.equal(fs.statSync(p).mode & 0o777, 0o444);
  assert.deepEqual(await store.read(put.digest), bytes);
  assert.equal((await store.putBytes(bytes)).written, false, 'a second put of the same bytes writes nothing');
});

test('a stream whose digest differs from the expected one leaves nothing behind', async (t) => {
  const root = tempDir(t);
  const store = await new ObjectStore(root).open();
  const bytes = pseudoRandom(3 << 20, 5);
  const wrong = digestBytes(Buffer.from('something else'));
  await assert.rejects(store.putStream(Readable.from([bytes.subarray(0, 1 << 20), bytes.subarray(1 << 20)]), wrong), { code: 'ERR_DFTFS_DIGEST_MISMATCH' });
  assert.equal(store.has(wrong), false);
  assert.equal(objectFiles(root).length, 0);
  assert.deepEqual(fs.readdirSync(path.join(root, 'tmp')), []);
  const ok = await store.putStream(Readable.from([bytes]), digestBytes(bytes));
  assert.equal(ok.size, bytes.length);
  assert.equal(b3sum(store.objectPath(ok.digest)), ok.digest);
});

test('a corrupted object is detected on read, moved aside, and can be stored again', async (t) => {
  const root = tempDir(t);
  const store = await new ObjectStore(root).open();
  const bytes = Buffer.from('the original content of an object');
  const { digest } = await store.putBytes(bytes);
  const p = store.objectPath(digest);
  fs.chmodSync(p, 0o644);
  fs.writeFileSync(p, 'tampered content of an object....');
  await assert.rejects(store.read(digest), { code: 'ERR_DFTFS_CORRUPT_OBJECT' });
  assert.equal(store.has(digest), false, 'the corrupt object is no longer served');
  assert.equal(fs.readdirSync(path.join(root, 'corrupt')).length, 1);
  await store.putBytes(bytes);
  await store.verify(digest);
  fs.chmodSync(p, 0o644);
  fs.appendFileSync(p, 'x');
  await assert.rejects(store.verify(digest), { code: 'ERR_DFTFS_CORRUPT_OBJECT' });
});

test('a writer killed mid-object leaves no visible object, and its temp file is swept', async (t) => {
  const root = tempDir(t);
  const store = await new ObjectStore(root).open();
  // A child process streams into the store from a pipe and is SIGKILLed halfway through.
  const script = `
    import { ObjectStore } from ${JSON.stringify(new URL('../../src/store/index.js', import.meta.url).href)};
    const store = await new ObjectStore(${JSON.stringify(root)}).open();
    process.stdout.write('ready\\n');
    await store.putStream(process.stdin);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdin.write(pseudoRandom(2 << 20, 9));
  await new Promise((r) => setTimeout(r, 300));
  const tmpBefore = fs.readdirSync(path.join(root, 'tmp'));
  assert.equal(tmpBefore.length, 1, 'the write is in progress in tmp/');
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.equal(objectFiles(root).length, 0, 'nothing half-written is visible as an object');
  assert.equal(await store.sweepTemp(60_000), 0, 'a fresh temp file is kept (its writer may be alive)');
  assert.equal(await store.sweepTemp(0), 1);
  assert.deepEqual(fs.readdirSync(path.join(root, 'tmp')), []);
});

test('linkTo hardlinks an object (zero copy) and replaces the destination atomically', async (t) => {
  const root = tempDir(t);
  const store = await new ObjectStore(path.join(root, 's')).open();
  const { digest } = await store.putBytes(Buffer.from('shared bytes'));
  const dest = path.join(root, 'out');
  fs.writeFileSync(dest, 'old');
  assert.equal(await store.linkTo(digest, dest), 'link');
  assert.equal(fs.statSync(dest).ino, fs.statSync(store.objectPath(digest)).ino);
  assert.equal(fs.readFileSync(dest, 'utf8'), 'shared bytes');
});

test('several processes storing the same object at once end with one good object', async (t) => {
  const root = tempDir(t);
  const bytes = pseudoRandom(1 << 20, 11);
  const src = path.join(root, 'src');
  fs.writeFileSync(src, bytes);
  const script = `
    import { ObjectStore } from ${JSON.stringify(new URL('../../src/store/index.js', import.meta.url).href)};
    const store = await new ObjectStore(${JSON.stringify(path.join(root, 'store'))}).open();
    for (let i = 0; i < 20; i++) await store.putFile(${JSON.stringify(src)});
  `;
  const kids = Array.from({ length: 4 }, () => spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' }));
  const codes = await Promise.all(kids.map((k) => new Promise((r) => k.once('exit', r))));
  assert.deepEqual(codes, [0, 0, 0, 0]);
  const store = new ObjectStore(path.join(root, 'store'));
  await store.verify(digestBytes(bytes));
  assert.equal(objectFiles(path.join(root, 'store')).length, 1);
});
