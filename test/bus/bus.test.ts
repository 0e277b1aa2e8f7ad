import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Agent } from '../../src/agent/index.js';
import { Bus } from '../../src/bus/index.js';
import { HashPool } from '../../src/hash/index.js';
import { indexTree } from '../../src/indexer/index.js';
import { natsFor } from '../cluster-helpers.js';
import { tempDir } from '../helpers.js';

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

test('only an agent that publishes a tree answers `toc latest`: before any, a request is told at once that nobody answers', async (t) => {
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
  const { digest } = await agent.publishTree(tree, toc);
  const latest = await asker.request(asker.subject('toc', 'latest'), {}, 10_000);
  assert.equal(latest.digest, digest);
  assert.equal(latest.generation, 3);
});
