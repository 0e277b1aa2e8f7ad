import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Agent } from '../../src/agent/index.js';
import { AgentObjectSource, createFuseOps, UpperLayer, type FuseOps, type ObjectSource } from '../../src/fs/index.js';
import { TocView } from '../../src/toc/index.js';
import { HashPool } from '../../src/hash/index.js';
import { indexTree } from '../../src/indexer/index.js';
import { ObjectStore } from '../../src/store/index.js';
import { tempDir } from '../helpers.js';

const E = os.constants.errno;

/** Calls one op the way fuse-native does and resolves to [code, value]. */
const call = (ops: FuseOps, op: string, ...args: unknown[]) =>
  new Promise<[number, any]>((resolve) => ops[op]!(...args, (code: number, value: unknown) => resolve([code, value])));

/** The lower tree's bytes come from a store filled from the source tree (the agent's role, minus the network). */
async function setup(t: import('node:test').TestContext, opts: { readOnly?: boolean; extra?: Record<string, Buffer> } = {}) {
  const dir = tempDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'sub/deep'), { recursive: true });
  fs.writeFileSync(path.join(src, 'a.txt'), 'alpha\n');
  fs.writeFileSync(path.join(src, 'sub/b.txt'), 'bravo\n');
  fs.writeFileSync(path.join(src, 'sub/deep/c.txt'), 'charlie\n');
  fs.symlinkSync('a.txt', path.join(src, 'link'));
  fs.chmodSync(path.join(src, 'a.txt'), 0o640);
  for (const [name, body] of Object.entries(opts.extra ?? {})) fs.writeFileSync(path.join(src, name), body);
  const pool = new HashPool(1);
  const { toc } = await indexTree(src, { pool }).finally(() => pool.close());
  const store = await new ObjectStore(path.join(dir, 'store')).open();
  for (const e of toc.entries) if (e.type === 'reg') await store.putFile(path.join(src, e.name));
  const prefetched: string[] = [];
  const nameOf = new Map(toc.entries.map((e) => [e.digest, e.name]));
  const objects: ObjectSource = {
    prefetch(descs) { for (const d of descs) prefetched.push(nameOf.get(d.digest)!); },
    open(desc) {
      return {
        async read(buf, len, pos) {
          const fh = await fsp.open(store.objectPath(desc.digest), 'r');
          try { return (await fh.read(buf, 0, len, pos)).bytesRead; } finally { await fh.close(); }
        },
        async close() {},
      };
    },
    async whole(desc) { return desc.size ? store.objectPath(desc.digest) : ''; },
  };
  let view = TocView.of(toc);
  const upper = await new UpperLayer(path.join(dir, 'cache')).open();
  const opened: string[] = [];
  const ops = createFuseOps({ view: () => view, upper, objects, uid: 0, gid: 0, readOnly: opts.readOnly, onOpen: (n) => opened.push(n) });
  return { dir, src, ops, upper, opened, prefetched, setView: (v: TocView) => { view = v; } };
}

async function readAll(ops: FuseOps, p: string): Promise<string> {
  const [, fd] = await call(ops, 'open', p, fs.constants.O_RDONLY);
  const buf = Buffer.alloc(4096);
  const [n] = await call(ops, 'read', p, fd, buf, buf.length, 0);
  await call(ops, 'release', p, fd);
  return buf.subarray(0, n).toString();
}

test('listing a directory fetches nothing; the first open in a directory prefetches its small files, once', async (t) => {
  const { ops, prefetched } = await setup(t, { extra: { 'sub/b2.txt': Buffer.from('b2\n'), 'sub/big.bin': Buffer.alloc(100 * 1024, 1) } });
  await call(ops, 'readdir', '/sub');
  for (const n of ['b.txt', 'b2.txt', 'big.bin']) await call(ops, 'getattr', `/sub/${n}`);
  assert.deepEqual(prefetched, [], 'find or ls -l costs no fetch');
  assert.equal(await readAll(ops, '/sub/b.txt'), 'bravo\n');
  assert.deepEqual(prefetched.sort(), ['sub/b.txt', 'sub/b2.txt'], 'the file opened and its small sibling; not the 100 KiB one, not other directories');
  prefetched.length = 0;
  await readAll(ops, '/sub/b2.txt');
  assert.deepEqual(prefetched, ['sub/b2.txt'], 'a second open in the directory prefetches only itself');
});

test('metadata and contents come from the TOC; unknown paths are ENOENT', async (t) => {
  const { ops, opened } = await setup(t);
  const [, st] = await call(ops, 'getattr', '/a.txt');
  assert.equal(st.mode, 0o100640);
  assert.equal(st.size, 6);
  assert.equal((await call(ops, 'getattr', '/nope'))[0], -E.ENOENT);
  assert.deepEqual((await call(ops, 'readdir', '/'))[1].sort(), ['.', '..', 'a.txt', 'link', 'sub']);
  assert.equal((await call(ops, 'readlink', '/link'))[1], 'a.txt');
  assert.equal(await readAll(ops, '/sub/deep/c.txt'), 'charlie\n');
  assert.deepEqual(opened, ['sub/deep/c.txt']);
  assert.equal((await call(ops, 'open', '/sub', 0))[0], -E.EISDIR);
});

test('writes go to the upper layer: copy-up keeps mode, deletions hide the lower file, changes are listed since a mark', async (t) => {
  const { ops, upper, src } = await setup(t);
  const mark = upper.mark();
  const [, fd] = await call(ops, 'open', '/a.txt', fs.constants.O_WRONLY | fs.constants.O_TRUNC);
  const data = Buffer.from('ALPHA!\n');
  assert.equal((await call(ops, 'write', '/a.txt', fd, data, data.length, 0))[0], data.length);
  await call(ops, 'release', '/a.txt', fd);
  assert.equal(await readAll(ops, '/a.txt'), 'ALPHA!\n');
  assert.equal(fs.readFileSync(path.join(src, 'a.txt'), 'utf8'), 'alpha\n', 'the lower tree is untouched');
  assert.equal((await call(ops, 'getattr', '/a.txt'))[1].mode, 0o100640);

  assert.equal((await call(ops, 'unlink', '/sub/b.txt'))[0], 0);
  assert.equal((await call(ops, 'getattr', '/sub/b.txt'))[0], -E.ENOENT);
  assert.deepEqual((await call(ops, 'readdir', '/sub'))[1].sort(), ['.', '..', 'deep']);

  const [, nfd] = await call(ops, 'create', '/sub/deep/new.o', 0o644);
  await call(ops, 'write', '/sub/deep/new.o', nfd, Buffer.from('obj'), 3, 0);
  await call(ops, 'release', '/sub/deep/new.o', nfd);
  const changes = upper.changedSince(mark);
  assert.deepEqual(changes.map(({ name, deleted }) => ({ name, deleted })), [
    { name: 'a.txt', deleted: false }, { name: 'sub/b.txt', deleted: true }, { name: 'sub/deep/new.o', deleted: false },
  ]);
  // Numbered in the order they happened (this test made them in name order).
  assert.ok(changes.every((c, i) => c.seq > mark && (i === 0 || c.seq > changes[i - 1]!.seq)), JSON.stringify(changes));
  assert.equal((await call(ops, 'getattr', '/sub/deep'))[1].mode & 0o777, 0o755, 'a copied-up parent keeps its mode');
});

test('directories: rmdir needs an empty merged dir, a lower dir cannot be renamed whole (EXDEV), mkdir after rmdir is empty', async (t) => {
  const { ops } = await setup(t);
  assert.equal((await call(ops, 'rmdir', '/sub/deep'))[0], -E.ENOTEMPTY);
  assert.equal((await call(ops, 'rename', '/sub', '/moved'))[0], -E.EXDEV);
  assert.equal((await call(ops, 'unlink', '/sub/deep/c.txt'))[0], 0);
  assert.equal((await call(ops, 'rmdir', '/sub/deep'))[0], 0);
  assert.equal((await call(ops, 'getattr', '/sub/deep'))[0], -E.ENOENT);
  assert.equal((await call(ops, 'mkdir', '/sub/deep', 0o700))[0], 0);
  assert.deepEqual((await call(ops, 'readdir', '/sub/deep'))[1], ['.', '..']);
  assert.equal((await call(ops, 'mkdir', '/sub/deep', 0o700))[0], -E.EEXIST);
  assert.equal((await call(ops, 'rename', '/a.txt', '/sub/deep/a2.txt'))[0], 0);
  assert.equal(await readAll(ops, '/sub/deep/a2.txt'), 'alpha\n');
  assert.equal((await call(ops, 'getattr', '/a.txt'))[0], -E.ENOENT);
  assert.equal((await call(ops, 'mkdir', '/nodir/x', 0o755))[0], -E.ENOENT);
});

test('a read-only mount refuses every write with EROFS but still reads', async (t) => {
  const { ops } = await setup(t, { readOnly: true });
  assert.equal((await call(ops, 'open', '/a.txt', fs.constants.O_RDWR))[0], -E.EROFS);
  assert.equal((await call(ops, 'create', '/x', 0o644))[0], -E.EROFS);
  assert.equal((await call(ops, 'unlink', '/a.txt'))[0], -E.EROFS);
  assert.equal((await call(ops, 'mkdir', '/d', 0o755))[0], -E.EROFS);
  assert.equal(await readAll(ops, '/a.txt'), 'alpha\n');
});

test('upper files and whiteouts are reloaded by the next mount of the same cache', async (t) => {
  const { ops, dir, upper } = await setup(t);
  await call(ops, 'unlink', '/sub/b.txt');
  await call(ops, 'symlink', 'sub', '/sublink');
  await upper.flush();
  const again = await new UpperLayer(path.join(dir, 'cache')).open();
  assert.ok(again.hidden('sub/b.txt'));
  assert.ok(again.has('sublink'));
});

test('a failing object source surfaces as EIO, never as a throw across the boundary', async (t) => {
  const broken = createFuseOps({
    view: () => TocView.of({ version: 1, hashAlgorithm: 'blake3', chunkBytes: 4, root: 'blake3:00', generation: 0, entries: [
      { name: '.', type: 'dir', mode: 0o755, modtime: '2024-01-01T00:00:00.000000000Z' },
      { name: 'f', type: 'reg', mode: 0o644, modtime: '2024-01-01T00:00:00.000000000Z', size: 4, digest: 'blake3:aa', chunks: [{ chunkOffset: 0, chunkSize: 4, chunkDigest: 'blake3:aa' }] },
    ] }),
    upper: await new UpperLayer(tempDir(t)).open(),
    objects: { prefetch() {}, open() { return { read: () => Promise.reject(new Error('peer gone')), close: async () => {} }; }, whole: () => Promise.reject(new Error('peer gone')) },
    uid: 0, gid: 0,
  });
  const [, fd] = await call(broken, 'open', '/f', 0);
  assert.equal((await call(broken, 'read', '/f', fd, Buffer.alloc(4), 4, 0))[0], -E.EIO);
  assert.equal((await call(broken, 'truncate', '/f', 0))[0], -E.EIO);
});

test('concurrent reads of a stored object share one open file, closed with the handle', async (t) => {
  const dir = tempDir(t);
  const store = await new ObjectStore(path.join(dir, 'store')).open();
  const bytes = Buffer.alloc(1 << 20);
  for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE(i, i);
  const { digest } = await store.putBytes(bytes);
  // Only the host store is used for an object already in it.
  const source = new AgentObjectSource({ store } as unknown as Agent, 1000);
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const before = fds();
  const file = source.open({ digest, size: bytes.length, chunks: [] });
  // The kernel's readahead sends several reads of one file at once.
  const bufs = Array.from({ length: 8 }, () => Buffer.alloc(128 * 1024));
  const counts = await Promise.all(bufs.map((b, i) => file.read(b, b.length, i * b.length)));
  assert.deepEqual(counts, bufs.map((b) => b.length));
  assert.ok(Buffer.concat(bufs).equals(bytes));
  assert.equal(fds(), before + 1, 'one descriptor for all the reads');
  await file.close();
  assert.equal(fds(), before);
});
