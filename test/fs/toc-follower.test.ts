import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { Agent, TreePublisher } from '../../src/agent/index.js';
import { TocFollower } from '../../src/fs/index.js';
import { HashPool } from '../../src/hash/index.js';
import { hashFile, indexTree, type StateRecord } from '../../src/indexer/index.js';
import { natsFor } from '../cluster-helpers.js';
import { tempDir, until } from '../helpers.js';

async function setup(t: TestContext) {
  const dir = tempDir(t);
  const nats = await natsFor(t);
  const start = async (host: string, origin: boolean) => {
    const a = await Agent.start({ home: path.join(dir, host), cluster: 'test', nats: nats.url, hostId: host, advertise: '127.0.0.1', origin });
    t.after(() => a.close());
    return a;
  };
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'src'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'src/main.c'), 'int main() { return 0; }\n');
  const pool = new HashPool(1);
  t.after(() => pool.close());
  const driver = await start('driver', true);
  const publisher = new TreePublisher(driver, tree, (generation) => indexTree(tree, { pool, generation }));
  /** Writes a job's output on the driver and publishes the paths it changed, as `dftfs drive` does. */
  const output = async (rel: string, text: string) => {
    const file = path.join(tree, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    const st = fs.lstatSync(file);
    const h = await hashFile(pool, file, st.size);
    const record: StateRecord = { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, digest: h.digest, chunks: h.chunks };
    return publisher.publish({ names: [rel], known: new Map([[rel, record]]) });
  };
  return { driver, publisher, output, worker: await start('worker', false) };
}

test('a follower gets a generation made from a delta: by the delta, or whole (stored when it is asked for) when it holds no base', async (t) => {
  const { driver, publisher, output, worker } = await setup(t);
  const first = await publisher.publish();
  assert.ok(first.tocDigest, 'an indexed generation is stored and announced with its digest');
  const second = await output('out/a.o', 'a\n');
  assert.equal(second.generation, 1);
  assert.equal(second.tocDigest, undefined, 'a generation made from a delta is announced without a TOC object');

  // A mount starting now holds no base: it asks for the latest, which the driver stores then.
  const follower = new TocFollower(worker);
  await follower.start();
  assert.equal(follower.view.generation, 1);
  assert.equal(follower.view.root, second.root);
  assert.equal(follower.view.get('out/a.o')?.size, 2);

  // The next one applies as a delta: the same root as the driver's.
  const third = await output('out/b.o', 'bb\n');
  await follower.waitForGeneration(2, 10_000);
  assert.equal(follower.view.root, third.root);
  assert.deepEqual(follower.view.children('out').sort(), ['a.o', 'b.o']);

  // An announcement whose delta does not apply, with no TOC object named: the latest is fetched whole.
  const before = follower.view;
  driver.bus.publish(driver.bus.subject('toc'), { root: `blake3:${'f'.repeat(64)}`, generation: 3, origin: driver.addr, delta: { baseRoot: `blake3:${'0'.repeat(64)}`, set: [], remove: [] } });
  await until('the latest TOC fetched whole', () => follower.view !== before, 10_000, 20);
  assert.equal(follower.view.generation, 2);
  assert.equal(follower.view.root, third.root);
});
