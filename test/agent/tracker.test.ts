import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Bus } from '../../src/bus/index.js';
import { Tracker, TRACKED_OBJECTS_MAX } from '../../src/agent/tracker.js';
import type { PeerAddr } from '../../src/agent/index.js';
import { digestBytes } from '../../src/hash/index.js';
import { natsFor, startDftfs, hostArgs } from '../cluster-helpers.js';
import { b3sum, pseudoRandom, runDftfs, tempDir } from '../helpers.js';

const MiB = 1 << 20;
const addr = (agent: string, host: string, port: number): PeerAddr => ({ agent, host, ip: '10.0.0.1', port });
const digestOf = (n: number) => digestBytes(Buffer.from(`object ${n}`));

test('tracker: the origin, whole holders (per host, any live agent of it) and askers (receiving) are named', () => {
  const origin = { ...addr('h0/1', 'h0', 1), origin: true };
  const mine = digestOf(1);
  const t = new Tracker(origin, (o) => (o === mine ? {} : undefined));
  const a1 = addr('hA/1', 'hA', 2);
  const b1 = addr('hB/1', 'hB', 3);
  const b2 = addr('hB/2', 'hB', 4);
  const c1 = addr('hC/1', 'hC', 5);

  assert.deepEqual(t.ask(mine, a1).holders.map((h) => [h.agent, h.have]), [['h0/1', 'all']]);
  // a1 asked, so it is receiving the object: the next asker hears of it.
  assert.deepEqual(t.ask(mine, b1).holders.map((h) => [h.agent, h.have]).sort(), [['h0/1', 'all'], ['hA/1', 'some']]);
  // a1's host announces it whole; a second agent of host B (sharing its store) says hello.
  t.announced(a1, [mine]);
  t.agentSeen(b2);
  const forC = t.ask(mine, c1).holders.map((h) => `${h.agent}:${h.have}`).sort();
  assert.deepEqual(forC, ['h0/1:all', 'hA/1:all', 'hB/1:some']);
  t.announced(b2, [mine]);
  const forNew = t.ask(mine, addr('hD/1', 'hD', 6)).holders.map((h) => `${h.agent}:${h.have}`).sort();
  assert.deepEqual(forNew, ['h0/1:all', 'hA/1:all', 'hB/1:all', 'hB/2:all', 'hC/1:some']);
  // An agent that left is not named; a host with no agent left is not named.
  t.agentGone(a1);
  t.agentGone(c1);
  assert.deepEqual(t.ask(mine, addr('hE/1', 'hE', 7)).holders.map((h) => h.agent).sort(), ['h0/1', 'hB/1', 'hB/2', 'hD/1']);
  // An object nobody announced and the origin does not serve: no holder, only the asker recorded.
  assert.deepEqual(t.ask(digestOf(2), a1).holders, []);
});

test('tracker: receivers are named latest first (a receiver with no whole copy but the origin\'s chains behind the first named)', () => {
  const origin = { ...addr('h0/1', 'h0', 1), origin: true };
  const obj = digestOf(3);
  const t = new Tracker(origin, (o) => (o === obj ? {} : undefined));
  const [a, b, c, d] = ['hA', 'hB', 'hC', 'hD'].map((h, i) => addr(`${h}/1`, h, 10 + i)) as [PeerAddr, PeerAddr, PeerAddr, PeerAddr];
  for (const x of [a, b, c, d]) t.ask(obj, x);
  const named = (asker: PeerAddr) => t.ask(obj, asker).holders.map((h) => `${h.agent}:${h.have}`);
  assert.deepEqual(named(addr('hE/1', 'hE', 20)), ['h0/1:all', 'hD/1:some', 'hC/1:some', 'hB/1:some', 'hA/1:some']);
  // Asking again (a receiver looking for more sources) makes it the latest.
  t.ask(obj, b);
  assert.deepEqual(named(addr('hF/1', 'hF', 21)), ['h0/1:all', 'hB/1:some', 'hE/1:some', 'hD/1:some', 'hC/1:some', 'hA/1:some']);
});

test('tracker: it remembers a bounded number of objects, forgetting the least recently announced', () => {
  const t = new Tracker(addr('h0/1', 'h0', 1), () => undefined);
  const a = addr('hA/1', 'hA', 2);
  const first = digestOf(0);
  t.announced(a, [first]);
  t.announced(a, Array.from({ length: TRACKED_OBJECTS_MAX - 1 }, (_, i) => digestOf(i + 1)));
  t.announced(a, [first]);
  t.announced(a, [digestOf(TRACKED_OBJECTS_MAX)]);
  assert.equal(t.size, TRACKED_OBJECTS_MAX);
  assert.equal(t.ask(first, addr('hB/1', 'hB', 3)).holders.length, 1, 'announced again just before: kept');
  assert.equal(t.ask(digestOf(1), addr('hB/1', 'hB', 3)).holders.length, 0, 'the oldest was forgotten');
});

test('with a tracker, finding a big file costs no question to every agent, and later hosts fetch it from earlier ones', async (t) => {
  const dir = tempDir(t);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'big.bin'), pseudoRandom(10 * MiB, 11));
  const nats = await natsFor(t);
  const origin = await startDftfs(t, ['serve', tree, ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  // An agent on every host serves its host's store once a get there has exited; the idle hosts
  // are there because with broadcast discovery each of their agents would hear every question.
  for (const h of ['hA', 'hB', 'hC', 'hI', 'hJ']) await startDftfs(t, ['agent', ...hostArgs(nats, h, path.join(dir, h))]);
  const bus = await Bus.connect({ url: nats.url, cluster: 'test', name: 'counter' });
  const seen = { who: 0, track: 0 };
  bus.subscribe(bus.subject('who'), () => void seen.who++);
  bus.subscribe(bus.subject('track'), () => void seen.track++);
  await bus.flush();
  try {
    const sources: Array<Record<string, number>> = [];
    for (const h of ['hA', 'hB', 'hC']) {
      const r = await runDftfs(['get', 'big.bin', path.join(dir, `out-${h}`), '--json', ...hostArgs(nats, h, path.join(dir, h))]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(b3sum(path.join(dir, `out-${h}`)), b3sum(path.join(tree, 'big.bin')));
      sources.push((JSON.parse(r.stdout.trim().split('\n').pop()!) as { bytesFrom: Record<string, number> }).bytesFrom);
    }
    await bus.flush();
    assert.equal(seen.who, 0, 'nobody asked every agent');
    assert.ok(seen.track >= 3, `each fetch asked the tracker (${seen.track} questions)`);
    assert.deepEqual(Object.keys(sources[0]!), [origin.agent], 'the first host got it from the origin');
    for (const s of sources.slice(1)) {
      assert.ok(Object.keys(s).some((a) => /^h[AB]\//.test(a)), `a later host got bytes from an earlier one: ${JSON.stringify(s)}`);
    }
  } finally {
    await bus.close();
  }
});

test('with no tracker running, a fetch by digest finds the holders by asking every agent', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'payload');
  fs.writeFileSync(file, pseudoRandom(6 * MiB, 12));
  const nats = await natsFor(t);
  const holder = await startDftfs(t, ['agent', ...hostArgs(nats, 'hA', path.join(dir, 'hA'))]);
  // bcast's own agent is a tracker only while it runs; it has exited when get starts.
  const sent = await runDftfs(['bcast', file, '--all', ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  assert.equal(sent.code, 0, sent.stderr);
  const r = await runDftfs(['get', b3sum(file), path.join(dir, 'out'), '--json', ...hostArgs(nats, 'hX', path.join(dir, 'hX'))]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(b3sum(path.join(dir, 'out')), b3sum(file));
  assert.deepEqual(Object.keys((JSON.parse(r.stdout.trim().split('\n').pop()!) as { bytesFrom: Record<string, number> }).bytesFrom), [holder.agent]);
});
