import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { TocView } from '../../src/fs/index.js';
import { HashPool } from '../../src/hash/index.js';
import { indexTree } from '../../src/indexer/index.js';
import { diffToc, type Toc } from '../../src/toc/index.js';
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
