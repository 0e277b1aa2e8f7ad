import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { HashPool } from '../../src/hash/index.js';
import { indexTree, type IndexOptions } from '../../src/indexer/index.js';
import { tempDir } from '../helpers.js';

/** An empty tree in a temp dir, a hash pool, and an index of the tree keeping its state beside it. */
export function indexFixture(t: TestContext) {
  const root = tempDir(t);
  const tree = path.join(root, 'tree');
  fs.mkdirSync(tree);
  const pool = new HashPool(2);
  t.after(() => pool.close());
  const statePath = path.join(root, 'state.json');
  const index = (extra: Partial<IndexOptions> = {}) => indexTree(tree, { pool, statePath, ...extra });
  return { root, tree, pool, statePath, index };
}
