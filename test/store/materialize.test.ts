import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { digestBytes, type Digest } from '../../src/hash/index.js';
import { ObjectStore, TreeWriter } from '../../src/store/index.js';
import type { TocEntry } from '../../src/toc/index.js';
import { pseudoRandom, tempDir } from '../helpers.js';

const MODTIME = '2001-09-09T01:46:40.000000000Z';
const dir = (name: string, mode = 0o755): TocEntry => ({ name, type: 'dir', mode, modtime: MODTIME });
const file = (name: string, bytes: Buffer, mode = 0o644): TocEntry => ({ name, type: 'reg', mode, modtime: MODTIME, size: bytes.length, digest: digestBytes(bytes), chunks: [] });
/** Names beside `p` that only a writer's temp files and directories have. */
const tempsBeside = (p: string) => fs.readdirSync(path.dirname(p)).filter((n) => n.includes('.dftfs-'));

test('hasMany answers as has() does, from one listing per busy shard', async (t) => {
  const store = await new ObjectStore(tempDir(t)).open();
  const held: Digest[] = [];
  for (let i = 0; i < 600; i++) held.push((await store.putBytes(pseudoRandom(64, 10_000 + i))).digest);
  const absent = Array.from({ length: 600 }, (_, i) => digestBytes(pseudoRandom(64, 20_000 + i)));
  const asked = [...held, ...absent];
  // Enough digests per shard (~4.7 on average over 256) that both ways of looking are taken.
  const got = store.hasMany(asked);
  assert.deepEqual([...got].sort(), asked.filter((d) => store.has(d)).sort());
  assert.equal(got.size, 600);
  assert.equal(store.hasMany([]).size, 0);
});

test('a tree written where nothing was: invisible until finish renames it into place; abort leaves nothing', async (t) => {
  const root = tempDir(t);
  const store = await new ObjectStore(path.join(root, 'store')).open();
  const a = pseudoRandom(3000, 1);
  const b = pseudoRandom(5000, 2);
  await store.putBytes(b);
  const entries = [dir('.', 0o750), dir('sub'), file('sub/a', a, 0o600), file('b', b, 0o755)];

  const dest = path.join(root, 'new/copy');
  const w = await TreeWriter.open(entries, dest);
  w.writeSync(entries[2]!, a);
  assert.equal(fs.existsSync(dest), false, 'nothing at DEST while it is written');
  assert.equal(tempsBeside(dest).length, 1, 'a temp directory beside it');
  await w.finish(store);
  assert.deepEqual(tempsBeside(dest), []);
  assert.deepEqual(fs.readFileSync(path.join(dest, 'sub/a')), a);
  assert.deepEqual(fs.readFileSync(path.join(dest, 'b')), b);
  assert.equal(fs.statSync(path.join(dest, 'sub/a')).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(dest, 'b')).mode & 0o777, 0o755);
  assert.equal(fs.statSync(dest).mode & 0o777, 0o750);
  assert.equal(fs.statSync(path.join(dest, 'b')).mtimeMs, 1_000_000_000_000);

  const failed = path.join(root, 'failed');
  const f = await TreeWriter.open(entries, failed);
  f.writeSync(entries[2]!, a);
  f.abort();
  assert.equal(fs.existsSync(failed), false);
  assert.deepEqual(tempsBeside(failed), [], 'a failed fetch leaves no half tree, under any name');
});

test('a tree written into an existing directory: files replaced one by one, what else is there stays', async (t) => {
  const root = tempDir(t);
  const store = await new ObjectStore(path.join(root, 'store')).open();
  const dest = path.join(root, 'copy');
  fs.mkdirSync(dest);
  fs.writeFileSync(path.join(dest, 'a'), 'old');
  fs.writeFileSync(path.join(dest, 'mine'), 'kept');
  const a = pseudoRandom(3000, 3);
  const entries = [dir('.'), file('a', a)];
  const w = await TreeWriter.open(entries, dest);
  w.writeSync(entries[1]!, a);
  assert.deepEqual(fs.readFileSync(path.join(dest, 'a')), a, 'in place at once');
  await w.finish(store);
  w.abort(); // too late to undo anything: the files stay
  assert.deepEqual(fs.readFileSync(path.join(dest, 'a')), a);
  assert.equal(fs.readFileSync(path.join(dest, 'mine'), 'utf8'), 'kept');
  assert.deepEqual(fs.readdirSync(dest).filter((n) => n.includes('.dftfs-')), []);
});
