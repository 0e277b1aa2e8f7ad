import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { appendIndexJournal, hashFile, updateToc, type StateRecord } from '../../src/indexer/index.js';
import { decodeToc, encodeToc, TocView } from '../../src/toc/index.js';
import { pseudoRandom } from '../helpers.js';
import { indexFixture } from './fixture.js';

function setup(t: TestContext) {
  const { tree, pool, statePath, index } = indexFixture(t);
  const write = (rel: string, size: number, seed: number) => {
    fs.mkdirSync(path.dirname(path.join(tree, rel)), { recursive: true });
    fs.writeFileSync(path.join(tree, rel), pseudoRandom(size, seed));
  };
  /** What the driver knows of an output it wrote: its stat as written and its content. */
  const content = async (rel: string): Promise<StateRecord> => {
    const st = fs.lstatSync(path.join(tree, rel));
    const h = await hashFile(pool, path.join(tree, rel), st.size);
    return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, digest: h.digest, chunks: h.chunks };
  };
  return { tree, pool, statePath, index, write, content };
}

test('a TOC updated at the changed paths equals a full index of the tree, and the index state takes its records', async (t) => {
  const { tree, statePath, index, write, content } = setup(t);
  write('src/a.c', 1000, 1);
  write('src/b.c', 2000, 2);
  write('gone/x', 10, 3);
  write('old.o', 50, 4);
  fs.symlinkSync('src/a.c', path.join(tree, 'link'));
  const first = await index();

  // What a make driver does with a job's outputs: new files in a new directory, a replaced file,
  // a removed file and directory, a new symlink, a multi-chunk file.
  write('out/deep/r1.o', 300, 5);
  write('out/big.bin', 9 * 1024 * 1024 + 7, 6);
  write('src/b.c', 2500, 7);
  fs.rmSync(path.join(tree, 'old.o'));
  fs.rmSync(path.join(tree, 'gone'), { recursive: true });
  fs.symlinkSync('deep/r1.o', path.join(tree, 'out/latest'));
  const names = ['out', 'out/deep', 'out/deep/r1.o', 'out/big.bin', 'src/b.c', 'old.o', 'gone', 'out/latest'];
  const known = new Map<string, StateRecord>();
  for (const n of ['out/deep/r1.o', 'out/big.bin', 'src/b.c']) known.set(n, await content(n));

  const view = TocView.of(first.toc);
  const update = updateToc(tree, view, names, known);
  assert.ok(update, 'the update applies');
  assert.deepEqual(update.delta.remove.sort(), ['gone', 'gone/x', 'old.o']);
  assert.deepEqual(update.delta.set.map((e) => e.name), ['.', 'out', 'out/deep', 'out/big.bin', 'src/b.c', 'out/latest', 'out/deep/r1.o'], 'parents first; src (its mtime kept), src/a.c and link are not in it');
  assert.deepEqual([...update.records.keys()].sort(), ['gone/x', 'old.o', 'out/big.bin', 'out/deep/r1.o', 'src/b.c']);
  assert.equal(update.records.get('old.o'), null);
  const next = view.apply(update.delta, 1);
  const toc = decodeToc(encodeToc(next.toToc())); // valid: every entry after its directory, chunks well formed, root matching
  assert.equal(toc.generation, 1);

  await appendIndexJournal(statePath, update.records);
  const full = await index();
  assert.equal(next.root, full.toc.root, 'same root as a full index');
  const sorted = (es: typeof full.toc.entries) => [...es].sort((a, b) => (a.name < b.name ? -1 : 1));
  assert.deepEqual(sorted(toc.entries), sorted(full.toc.entries));
  // The full index reused the journalled digests: it read no file.
  assert.equal(full.stats.filesHashed, 0);
  assert.equal(full.stats.bytesRead, 0);

  // Two more versions on top: a directory turned into a file, a removed directory made again,
  // then nothing changed at all.
  fs.rmSync(path.join(tree, 'out/deep'), { recursive: true });
  write('out/deep', 20, 8);
  write('gone/y', 30, 9);
  const known2 = new Map([['out/deep', await content('out/deep')], ['gone/y', await content('gone/y')]]);
  const update2 = updateToc(tree, next, ['out/deep', 'gone/y'], known2);
  assert.ok(update2);
  const third = next.apply(update2.delta, 2);
  const toc2 = decodeToc(encodeToc(third.toToc()));
  await appendIndexJournal(statePath, update2.records);
  const full2 = await index();
  assert.equal(third.root, full2.toc.root);
  assert.deepEqual(sorted(toc2.entries), sorted(full2.toc.entries));
  const none = updateToc(tree, third, ['out/deep'], known2);
  assert.deepEqual(none && [none.delta.set, none.delta.remove], [[], []]);
});

test('a TOC update gives up (the caller re-indexes) on a file of unknown content, a file changed since its record, or a hard link', async (t) => {
  const { tree, index, write, content } = setup(t);
  write('a', 100, 1);
  write('h1', 100, 2);
  fs.linkSync(path.join(tree, 'h1'), path.join(tree, 'h2'));
  const toc = TocView.of((await index()).toc);
  write('b', 10, 3);
  assert.equal(updateToc(tree, toc, ['b'], new Map()), undefined, 'content not known');
  const kb = await content('b');
  assert.ok(updateToc(tree, toc, ['b'], new Map([['b', kb]])));
  assert.equal(updateToc(tree, toc, ['b'], new Map([['b', { ...kb, size: 11 }]])), undefined, 'size differs from the file');
  await new Promise((r) => setTimeout(r, 30)); // past the kernel's coarse file-time tick
  write('b', 10, 5); // rewritten after its record was taken: same size, other content
  assert.equal(updateToc(tree, toc, ['b'], new Map([['b', kb]])), undefined, 'file changed since its record');
  write('h1', 100, 4);
  assert.equal(updateToc(tree, toc, ['h1'], new Map([['h1', await content('h1')]])), undefined, 'a name hard-linked to another');
});
