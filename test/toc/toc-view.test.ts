import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { HashPool } from '../../src/hash/index.js';
import { indexTree } from '../../src/indexer/index.js';
import { diffToc, TocView, type Toc } from '../../src/toc/index.js';
import { tempDir } from '../helpers.js';

/** Every name of a view with its entry and its children: what getattr and readdir answer. */
function dump(view: TocView): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of [...view.names()].sort()) out[n] = { entry: view.get(n), kids: [...view.children(n)].sort() };
  return out;
}

test('a follower applying a TOC delta gets the same view as from the whole TOC; a delta that does not fit is refused', async (t) => {
  const tree = path.join(tempDir(t), 'tree');
  const w = (rel: string, body: string) => {
    fs.mkdirSync(path.dirname(path.join(tree, rel)), { recursive: true });
    fs.writeFileSync(path.join(tree, rel), body);
  };
  w('src/a.c', 'a'); w('src/b.c', 'b'); w('old/x/y.txt', 'y'); w('old/z.txt', 'z'); w('keep.txt', 'k');
  fs.symlinkSync('src/a.c', path.join(tree, 'link'));
  const pool = new HashPool(1);
  t.after(() => pool.close());
  const index = async (generation: number): Promise<Toc> => (await indexTree(tree, { pool, generation })).toc;
  const g0 = await index(0);

  w('src/a.c', 'a changed'); w('out/deep/new.o', 'new'); fs.rmSync(path.join(tree, 'old'), { recursive: true });
  fs.rmSync(path.join(tree, 'link')); fs.symlinkSync('src/b.c', path.join(tree, 'link'));
  fs.chmodSync(path.join(tree, 'keep.txt'), 0o600);
  const g1 = await index(1);

  const delta = diffToc(g0, g1)!;
  assert.ok(delta, 'a small change has a delta');
  assert.ok(delta.set.length < g1.entries.length, 'the delta carries only what changed');
  assert.deepEqual(delta.remove.sort(), ['old', 'old/x', 'old/x/y.txt', 'old/z.txt']);
  const applied = TocView.of(g0).withDelta(JSON.parse(JSON.stringify(delta)), g1.root, 1);
  assert.equal(applied.generation, 1);
  assert.equal(applied.root, g1.root);
  assert.deepEqual(dump(applied), dump(TocView.of(g1)));

  // A second delta on top of the first (the per-directory digests carried over).
  w('src/c.c', 'c');
  const g2 = await index(2);
  assert.deepEqual(dump(applied.withDelta(diffToc(g1, g2), g2.root, 2)), dump(TocView.of(g2)));

  const refused = (d: unknown, root = g1.root, code = 'ERR_DFTFS_MALFORMED_TOC') => assert.throws(() => TocView.of(g0).withDelta(d, root, 1), { code });
  refused(delta, g0.root); // the result is not the announced root
  refused({ ...delta, baseRoot: g1.root }); // not a delta of this generation
  const lying = JSON.parse(JSON.stringify(delta)) as typeof delta;
  const changed = lying.set.find((e) => e.name === 'src/a.c')!;
  changed.size = 1; // a tampered entry: its chunks no longer cover its size
  refused(lying);
  refused({ ...delta, set: [{ name: '../escape', type: 'reg', mode: 0o644, modtime: g1.entries[0]!.modtime, size: 0, digest: changed.digest, chunks: [] }] }, g1.root, 'ERR_DFTFS_UNSAFE_PATH');
  refused({ ...delta, remove: ['old'] }); // its entries would be left under nothing
});

test('deltas applied one after another, past the size where a view makes its own map, equal the whole TOC; earlier views stay as they were', async (t) => {
  const tree = path.join(tempDir(t), 'tree');
  fs.mkdirSync(path.join(tree, 'd'), { recursive: true });
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(tree, 'd', `f${i}`), `file ${i}`);
  fs.writeFileSync(path.join(tree, 'target'), 't');
  fs.linkSync(path.join(tree, 'target'), path.join(tree, 'hard'));
  const pool = new HashPool(1);
  t.after(() => pool.close());
  const index = async (generation: number): Promise<Toc> => (await indexTree(tree, { pool, generation })).toc;
  let prev = await index(0);
  const first = TocView.of(prev);
  const firstDump = dump(first);
  let view = first;
  // Each generation adds 1,900 files in a directory of its own, changes one file and removes
  // another: the names changed since the first view pass 8,192 in the fifth.
  for (let g = 1; g <= 6; g++) {
    fs.mkdirSync(path.join(tree, `g${g}`));
    for (let i = 0; i < 1900; i++) fs.writeFileSync(path.join(tree, `g${g}`, `n${i}`), `${g}.${i}`);
    fs.writeFileSync(path.join(tree, 'd', `f${g}`), `changed in ${g}`);
    fs.rmSync(path.join(tree, 'd', `f${g + 20}`));
    const next = await index(g);
    const delta = diffToc(prev, next);
    assert.ok(delta, `generation ${g} has a delta`);
    view = view.withDelta(JSON.parse(JSON.stringify(delta)), next.root, g);
    assert.deepEqual(dump(view), dump(TocView.of(next)), `generation ${g}`);
    prev = next;
  }
  assert.deepEqual(dump(first), firstDump, 'the first view did not change');
  assert.equal(view.get('hard')?.digest, view.get('target')?.digest, 'the hard link still resolves');
  // A delta that removes a hard link's file is refused.
  assert.throws(() => view.withDelta({ baseRoot: view.root, set: [], remove: ['target'] }, view.root, 8), { code: 'ERR_DFTFS_MALFORMED_TOC' });
});
