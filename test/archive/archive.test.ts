import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import tar from 'tar-stream';
import { exportTree, importArchive, TOC_ENTRY_NAME } from '../../src/archive/index.js';
import { HashPool, digestBytes } from '../../src/hash/index.js';
import { indexTree } from '../../src/indexer/index.js';
import { materialize, ObjectStore } from '../../src/store/index.js';
import { encodeToc, merkleRoot, type Toc, type TocEntry } from '../../src/toc/index.js';
import { pseudoRandom, tempDir } from '../helpers.js';

async function indexed(t: TestContext, tree: string): Promise<Toc> {
  const pool = new HashPool(2);
  t.after(() => pool.close());
  return (await indexTree(tree, { pool })).toc;
}

function sampleTree(root: string): string {
  const tree = path.join(root, 'tree');
  fs.mkdirSync(path.join(tree, 'src/deep'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'big.bin'), pseudoRandom(9 << 20, 2));
  fs.writeFileSync(path.join(tree, 'src/main.c'), 'int main(void) { return 0; }\n');
  fs.writeFileSync(path.join(tree, 'src/deep/empty'), '');
  fs.writeFileSync(path.join(tree, 'run.sh'), '#!/bin/sh\necho hi\n');
  fs.chmodSync(path.join(tree, 'run.sh'), 0o755);
  fs.symlinkSync('src/main.c', path.join(tree, 'main-link'));
  fs.linkSync(path.join(tree, 'run.sh'), path.join(tree, 'run-again.sh'));
  return tree;
}

/** Lists a tree as comparable facts: names, types, modes, sizes, contents, link targets. */
function describe(tree: string): string[] {
  const out: string[] = [];
  for (const rel of (fs.readdirSync(tree, { recursive: true }) as string[]).sort()) {
    const p = path.join(tree, rel);
    const st = fs.lstatSync(p);
    const what = st.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : st.isFile() ? digestBytes(fs.readFileSync(p)) : 'dir';
    out.push(`${rel} ${(st.mode & 0o7777).toString(8)} ${what} ${st.isFile() ? Math.floor(st.mtimeMs) : ''}`);
  }
  return out;
}

async function exportToBuffer(tree: string, toc: Toc): Promise<Buffer> {
  const parts: Buffer[] = [];
  const { Writable } = await import('node:stream');
  await exportTree(tree, toc, new Writable({ write: (c, _e, cb) => { parts.push(c); cb(); } }));
  return Buffer.concat(parts);
}

test('export then import into a fresh store and write out: the same tree, every byte verified', async (t) => {
  const root = tempDir(t);
  const tree = sampleTree(root);
  const toc = await indexed(t, tree);
  const archive = await exportToBuffer(tree, toc);
  const store = await new ObjectStore(path.join(root, 'store')).open();
  const res = await importArchive(Readable.from([archive]), store);
  assert.deepEqual(res.refused, []);
  assert.equal(res.toc.root, toc.root);
  assert.equal(res.objectsWritten, 4, 'big.bin, main.c, empty, run.sh (its hardlink shares the object)');
  assert.ok(store.has(res.tocDigest), 'the TOC is an object too');
  await materialize(res.toc.entries, store, path.join(root, 'copy'));
  assert.deepEqual(describe(path.join(root, 'copy')), describe(tree));
  assert.equal(fs.statSync(path.join(root, 'copy/run.sh')).ino, fs.statSync(path.join(root, 'copy/run-again.sh')).ino);
  const copyIno = fs.statSync(path.join(root, 'copy/big.bin')).ino;
  assert.notEqual(copyIno, fs.statSync(store.objectPath(res.toc.entries.find((e) => e.name === 'big.bin')!.digest!)).ino, 'written out as a copy, so edits cannot corrupt the store');
});

test('export refuses a file that changed since it was indexed', async (t) => {
  const root = tempDir(t);
  const tree = sampleTree(root);
  const toc = await indexed(t, tree);
  fs.writeFileSync(path.join(tree, 'src/main.c'), 'int main(void) { return 1; }\n');
  await assert.rejects(exportToBuffer(tree, toc), { code: 'ERR_DFTFS_FILE_CHANGED', message: /src\/main.c/ });
});

/** Builds a tar by hand: the way a hostile or broken archive would arrive. */
async function handmade(entries: Array<{ header: tar.Headers; body?: Buffer | string }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const { header, body } of entries) pack.entry(header, body === undefined ? undefined : Buffer.from(body));
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const c of pack) parts.push(c);
  return Buffer.concat(parts);
}

const T = '2026-01-01T00:00:00.000000000Z';
function tocOf(entries: TocEntry[]): Buffer {
  const all: TocEntry[] = [{ name: '.', type: 'dir', mode: 0o755, modtime: T }, ...entries];
  return Buffer.from(encodeToc({ version: 1, hashAlgorithm: 'blake3', chunkBytes: 4 << 20, root: merkleRoot(all), generation: 0, entries: all }));
}
const reg = (name: string, body: string): TocEntry => ({
  name, type: 'reg', mode: 0o644, modtime: T, size: body.length, digest: digestBytes(Buffer.from(body)),
  chunks: body.length ? [{ chunkOffset: 0, chunkSize: body.length, chunkDigest: digestBytes(Buffer.from(body)) }] : [],
});

test('import refuses entries that escape the tree, are not in the TOC, or whose bytes do not match', async (t) => {
  const root = tempDir(t);
  const store = await new ObjectStore(path.join(root, 'store')).open();
  const toc = tocOf([reg('good', 'good bytes'), reg('bad', 'expected bytes'), { name: 'up', type: 'symlink', mode: 0o777, modtime: T, linkName: '../../etc/passwd' }]);
  const archive = await handmade([
    { header: { name: TOC_ENTRY_NAME }, body: toc },
    { header: { name: 'good' }, body: 'good bytes' },
    { header: { name: 'bad' }, body: 'tampered bytes' },
    { header: { name: '../escape' }, body: 'x' },
    { header: { name: '/etc/evil' }, body: 'x' },
    { header: { name: 'not-in-toc' }, body: 'x' },
    { header: { name: 'up', type: 'symlink', linkname: '../../etc/passwd' } },
  ]);
  const res = await importArchive(Readable.from([archive]), store);
  const refused = new Map(res.refused.map((r) => [r.name, r.reason]));
  assert.deepEqual([...refused.keys()].sort(), ['../escape', '/etc/evil', 'bad', 'not-in-toc', 'up']);
  assert.match(refused.get('bad')!, /does not match/);
  assert.match(refused.get('../escape')!, /"\.\." component/);
  assert.match(refused.get('/etc/evil')!, /absolute/);
  assert.match(refused.get('up')!, /outside the tree/);
  assert.ok(store.has(digestBytes(Buffer.from('good bytes'))));
  assert.equal(store.has(digestBytes(Buffer.from('tampered bytes'))), false);
  assert.equal(store.has(digestBytes(Buffer.from('expected bytes'))), false);
  assert.equal(fs.existsSync(path.join(root, 'escape')), false);
  await materialize(res.toc.entries, store, path.join(root, 'out'), { skip: new Set(refused.keys()) });
  assert.deepEqual(fs.readdirSync(path.join(root, 'out')), ['good']);
});

test('import refuses an archive that is not a dftfs archive or whose TOC is malformed', async (t) => {
  const root = tempDir(t);
  const store = await new ObjectStore(path.join(root, 'store')).open();
  const plain = await handmade([{ header: { name: 'hello.txt' }, body: 'hi' }]);
  await assert.rejects(importArchive(Readable.from([plain]), store), { code: 'ERR_DFTFS_MALFORMED_ARCHIVE', message: /not a dftfs archive/ });
  const evilToc = JSON.parse(tocOf([reg('x', 'x')]).toString());
  evilToc.entries[1].name = '../x';
  const evil = await handmade([{ header: { name: TOC_ENTRY_NAME }, body: JSON.stringify(evilToc) }]);
  await assert.rejects(importArchive(Readable.from([evil]), store), { code: 'ERR_DFTFS_UNSAFE_PATH' });
  const junk = await handmade([{ header: { name: TOC_ENTRY_NAME }, body: '{"version": 1' }]);
  await assert.rejects(importArchive(Readable.from([junk]), store), { code: 'ERR_DFTFS_MALFORMED_TOC' });
  await assert.rejects(importArchive(Readable.from([Buffer.from('not a tar at all, just text'.repeat(40))]), store));
});
