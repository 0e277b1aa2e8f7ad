import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Agent } from '../../src/agent/index.js';
import { Bus } from '../../src/bus/index.js';
import { HashPool, type Digest } from '../../src/hash/index.js';
import { indexTree } from '../../src/indexer/index.js';
import { decodeToc, TocView } from '../../src/toc/index.js';
import { natsFor } from '../cluster-helpers.js';
import { tempDir, until } from '../helpers.js';

const BUS = new URL('../../src/bus/index.js', import.meta.url).href;

test('Bus.close() ends the connection when nats-server stops at the same moment (the process can exit)', () => {
  // In a child process: a connection left open would reconnect forever and keep it alive.
  const script = `
    import { Bus, startNatsServer } from ${JSON.stringify(BUS)};
    const server = await startNatsServer();
    const bus = await Bus.connect({ url: server.url, cluster: 'test', name: 'closing' });
    const stopped = server.stop();
    await bus.close();
    await stopped;
    console.log('closed');
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(r.signal, null, `the process did not exit within 15 s: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'closed');
});

test('only an agent that publishes a tree answers `toc latest`: before any, a request is told at once that nobody answers; a version made from a delta has its TOC stored when asked', async (t) => {
  const dir = tempDir(t);
  const nats = await natsFor(t);
  const agent = await Agent.start({ home: path.join(dir, 'home'), cluster: 'test', nats: nats.url, hostId: 'h', advertise: '127.0.0.1' });
  t.after(() => agent.close());
  const asker = await Bus.connect({ url: nats.url, cluster: 'test', name: 'asker' });
  t.after(() => asker.close());
  // A mount starting before its driver asks this; it used to wait out the timeout for an agent holding no TOC.
  await assert.rejects(asker.request(asker.subject('toc', 'latest'), {}, 10_000), /nobody answers/);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'a.txt'), 'a');
  const pool = new HashPool(1);
  t.after(() => pool.close());
  const { toc } = await indexTree(tree, { pool, generation: 3 });
  const view = TocView.of(toc);
  const { digest } = await agent.publishTree(tree, { toc });
  const latest = await asker.request(asker.subject('toc', 'latest'), {}, 10_000);
  assert.equal(latest.digest, digest);
  assert.equal(latest.generation, 3);

  // The next version from a delta: announced without a TOC object, which `toc latest` then stores.
  const announced: Array<Record<string, unknown>> = [];
  asker.subscribe(asker.subject('toc'), (b) => { announced.push(b); });
  await asker.flush();
  fs.writeFileSync(path.join(tree, 'b.txt'), 'bb');
  const b = (await indexTree(tree, { pool, generation: 4 })).toc.entries.find((e) => e.name === 'b.txt')!;
  const next = view.apply({ baseRoot: view.root, set: [b], remove: [] }, 4);
  const published = await agent.publishTree(tree, { view: next, delta: { baseRoot: view.root, set: [b], remove: [] } });
  assert.equal(published.digest, undefined, 'no TOC object made for the announcement');
  const again = await asker.request(asker.subject('toc', 'latest'), {}, 10_000);
  assert.equal(again.generation, 4);
  assert.equal(again.root, next.root);
  const stored = decodeToc(await agent.store.read(again.digest as Digest));
  assert.equal(stored.root, next.root, 'the stored TOC has the version\'s root (decodeToc checked it against the entries)');
  assert.deepEqual(stored.entries.map((e) => e.name).sort(), ['.', 'a.txt', 'b.txt']);
  await until('the announcement of generation 4', () => announced.length > 0, 5000, 20);
  assert.equal(announced.length, 1);
  assert.equal(announced[0]!.digest, undefined);
  assert.equal(announced[0]!.generation, 4);
  assert.deepEqual((announced[0]!.delta as { set: unknown[] }).set, [b]);
});
