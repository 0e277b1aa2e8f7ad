import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { Agent } from '../../src/agent/index.js';
import { Bus } from '../../src/bus/index.js';
import { digestBytes, type Digest } from '../../src/hash/index.js';
import { bcastChunkBytes } from '../../src/cli/bcast-cmd.js';
import { PeerServer } from '../../src/net/index.js';
import { natsFor, startDftfs, hostArgs } from '../cluster-helpers.js';
import { BIN, b3sum, pseudoRandom, runDftfs, tempDir } from '../helpers.js';

const MiB = 1 << 20;

function treeWith(dir: string, files: Record<string, Buffer>): string {
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree, { recursive: true });
  for (const [n, b] of Object.entries(files)) fs.writeFileSync(path.join(tree, n), b);
  return tree;
}

interface GetJson { digest: string; dest: string; how: string; placed: string; bytesFrom: Record<string, number>; busy: number; retries: number }
const getJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!) as GetJson;

test('get fetches a published file by path and by digest, verified; the second copy on a host is a hardlink', async (t) => {
  const dir = tempDir(t);
  const big = pseudoRandom(9 * MiB + 123, 1);
  const tree = treeWith(dir, { 'big.bin': big, 'small.txt': Buffer.from('hello\n') });
  const nats = await natsFor(t);
  const origin = await startDftfs(t, ['serve', tree, ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  const home = path.join(dir, 'h1');
  const r1 = await runDftfs(['get', 'big.bin', path.join(dir, 'out1'), '--json', ...hostArgs(nats, 'h1', home)]);
  assert.equal(r1.code, 0, r1.stderr);
  const j1 = getJson(r1.stdout);
  assert.equal(j1.how, 'network');
  assert.equal(b3sum(path.join(dir, 'out1')), b3sum(path.join(tree, 'big.bin')));
  assert.equal(j1.bytesFrom[origin.agent], big.length);

  const r2 = await runDftfs(['get', j1.digest, path.join(dir, 'out2'), '--json', ...hostArgs(nats, 'h1', home)]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(getJson(r2.stdout).how, 'present', 'already in the host store: nothing fetched');
  assert.equal(fs.statSync(path.join(dir, 'out1')).ino, fs.statSync(path.join(dir, 'out2')).ino, 'both are hardlinks of the one store object');

  const missing = await runDftfs(['get', 'nope.txt', path.join(dir, 'x'), ...hostArgs(nats, 'h1', home)]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope.txt: not in the published tree/);
  const escape = await runDftfs(['get', '../etc/passwd', path.join(dir, 'x'), ...hostArgs(nats, 'h1', home)]);
  assert.equal(escape.code, 1);
  assert.match(escape.stderr, /refused path/);
});

/** Every path under `root`: type, permission bits, mtime (ms), and content digest or link target. */
function listing(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const p = path.join(root, rel);
    const st = fs.lstatSync(p);
    const what = st.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : st.isDirectory() ? 'dir' : b3sum(p);
    out[rel || '.'] = `${(st.mode & 0o7777).toString(8)} ${st.isSymbolicLink() ? '' : Math.floor(st.mtimeMs)} ${what}`;
    if (st.isDirectory()) for (const c of fs.readdirSync(p)) walk(rel ? `${rel}/${c}` : c);
  };
  walk('');
  return out;
}

test('get of a directory: the tree arrives whole (contents, modes, times, links); a symlink out of a subtree is left out', async (t) => {
  const dir = tempDir(t);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'src/inc'), { recursive: true });
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(tree, 'src/inc', `h${i}.h`), pseudoRandom(2000 + i, 100 + (i % 250)));
  fs.writeFileSync(path.join(tree, 'src/big.bin'), pseudoRandom(6 * MiB + 5, 7));
  fs.writeFileSync(path.join(tree, 'src/empty'), '');
  fs.writeFileSync(path.join(tree, 'src/run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  fs.linkSync(path.join(tree, 'src/run.sh'), path.join(tree, 'src/run-again.sh'));
  fs.symlinkSync('inc/h1.h', path.join(tree, 'src/h1-link'));
  fs.symlinkSync('../top.txt', path.join(tree, 'src/up'));
  fs.writeFileSync(path.join(tree, 'top.txt'), 'top\n');
  fs.chmodSync(path.join(tree, 'src/inc'), 0o750);
  fs.utimesSync(path.join(tree, 'src/inc/h7.h'), 1_000_000, 1_000_000);
  const nats = await natsFor(t);
  await startDftfs(t, ['serve', tree, ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  const home = path.join(dir, 'h1');

  const whole = await runDftfs(['get', '.', path.join(dir, 'copy'), '--json', ...hostArgs(nats, 'h1', home)]);
  assert.equal(whole.code, 0, whole.stderr);
  assert.deepEqual(listing(path.join(dir, 'copy')), listing(tree));
  assert.equal(fs.statSync(path.join(dir, 'copy/src/run.sh')).ino, fs.statSync(path.join(dir, 'copy/src/run-again.sh')).ino, 'a hardlink stays one');
  const j = JSON.parse(whole.stdout.trim().split('\n').pop()!) as { files: number; fetched: number; fetchedBytes: number };
  assert.equal(j.files, 303, '300 headers, big.bin, run.sh (run-again.sh is the same file), top.txt; the empty file has no object');
  assert.equal(j.fetched, j.files, 'every distinct file came over the network');

  // A subtree: src/up points out of it, so it is left out, with a warning and exit status 1.
  const sub = await runDftfs(['get', 'src', path.join(dir, 'sub'), '--link', ...hostArgs(nats, 'h1', home)]);
  assert.equal(sub.code, 1, sub.stderr);
  assert.match(sub.stderr, /up: not written: symlink to "\.\.\/top\.txt" points outside the tree/);
  assert.equal(fs.existsSync(path.join(dir, 'sub/up')), false);
  assert.equal(fs.readFileSync(path.join(dir, 'sub/inc/h5.h')).equals(fs.readFileSync(path.join(tree, 'src/inc/h5.h'))), true);
  assert.ok(fs.statSync(path.join(dir, 'sub/big.bin')).nlink >= 2, '--link: the file is a hardlink of its store object');
  assert.equal(fs.readdirSync(path.join(dir, 'sub')).filter((n) => n.includes('.dftfs-')).length, 0, 'no temp file left');
});

test('get of a directory interrupted with Ctrl-C: exit 130, no DEST and no temp directory left', async (t) => {
  const dir = tempDir(t);
  const files: Record<string, Buffer> = { 'big.bin': pseudoRandom(8 * MiB, 9) };
  for (let i = 0; i < 50; i++) files[`s${i}.txt`] = pseudoRandom(1000 + i, 300 + i);
  const tree = treeWith(dir, files);
  const nats = await natsFor(t);
  // The publisher sends at 1 MB/s: the small files land at once, big.bin takes seconds.
  await startDftfs(t, ['serve', tree, '--bwlimit', '1m', ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  const dest = path.join(dir, 'copy');
  const get = spawn(process.execPath, [BIN, 'get', '.', dest, ...hostArgs(nats, 'h1', path.join(dir, 'h1'))], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => { if (get.exitCode === null) get.kill('SIGKILL'); });
  let stderr = '';
  get.stderr!.on('data', (b) => { stderr += b; });
  const exited = new Promise<number | null>((r) => get.once('exit', (code) => r(code)));
  const temps = () => fs.readdirSync(dir).filter((n) => n.startsWith('.copy.dftfs-'));
  // Wait until the small files are in the new tree's temp directory.
  for (let i = 0; i < 200 && !(temps().length && fs.readdirSync(path.join(dir, temps()[0]!)).length >= 50); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(temps().length, 1, 'the tree is being written under a temp name');
  assert.equal(fs.existsSync(dest), false, 'DEST is not there before the tree is whole');
  get.kill('SIGINT');
  assert.equal(await exited, 130, stderr);
  assert.match(stderr, /SIGINT: stopped; nothing half-written is left/);
  assert.equal(fs.existsSync(dest), false);
  assert.deepEqual(temps(), []);
});

test('bcastChunkBytes: 1 MiB chunks, coarser only to keep the order under 4,096 chunks', () => {
  assert.equal(bcastChunkBytes(13 * MiB), MiB);
  assert.equal(bcastChunkBytes(4096 * MiB), MiB);
  assert.equal(bcastChunkBytes(4096 * MiB + 1), 2 * MiB);
  assert.equal(bcastChunkBytes(12 * 1024 * MiB), 4 * MiB);
  assert.equal(bcastChunkBytes(100 * 1024 * MiB), 4 * MiB, 'never beyond the TOC\'s 4 MiB');
});

test('bcast: every agent gets the file (streamed: sent while hashed); agents sharing a host store download it once; sent again, nothing moves', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'payload');
  fs.writeFileSync(file, pseudoRandom(13 * MiB, 2));
  const nats = await natsFor(t);
  const a1 = await startDftfs(t, ['agent', ...hostArgs(nats, 'hA', path.join(dir, 'hA'))]);
  const a2 = await startDftfs(t, ['agent', ...hostArgs(nats, 'hA', path.join(dir, 'hA'))]);
  const b1 = await startDftfs(t, ['agent', ...hostArgs(nats, 'hB', path.join(dir, 'hB'))]);
  const r = await runDftfs(['bcast', file, '--all', '--json', ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { digest: string; chunks: number; streamed: boolean; receivers: Array<{ agent: string; how: string; ok: boolean }> };
  assert.equal(res.chunks, 13, 'a bcast cuts the file into 1 MiB chunks (short chain hops)');
  assert.equal(res.streamed, true, 'a file of more than 4 chunks is ordered before it is hashed');
  assert.equal(res.digest, b3sum(file));
  const how = new Map(res.receivers.map((x) => [x.agent, x.how]));
  assert.equal(how.size, 3);
  const hostA = [how.get(a1.agent), how.get(a2.agent)];
  assert.equal(hostA.filter((h) => h === 'network').length, 1, `one download for host A: ${hostA}`);
  assert.ok(hostA.includes('host') || hostA.includes('present'), `the other agent of host A shares it: ${hostA}`);
  assert.equal(how.get(b1.agent), 'network');
  for (const h of ['hA', 'hB']) {
    const objects = fs.readdirSync(path.join(dir, h, 'store/objects'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    assert.equal(objects.length, 1);
    assert.equal(b3sum(path.join(objects[0]!.parentPath, objects[0]!.name)), b3sum(file));
  }
  // Every host holds it now: a receiver stops its stream once the digest arrives and finds it in its store.
  const again = await runDftfs(['bcast', file, '--all', '--json', ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  assert.equal(again.code, 0, again.stderr);
  const second = (JSON.parse(again.stdout) as { receivers: Array<{ how: string; received: number }> }).receivers;
  assert.ok(second.every((x) => x.how === 'present'), `nothing fetched the second time: ${second.map((x) => x.how)}`);
  // Chunks may start to move before the origin has hashed the whole file: a few, not the file.
  const moved = second.map((x) => x.received);
  assert.ok(moved.every((n) => n <= 4 * MiB), `bytes received the second time: ${moved}`);
});

test('bcast --to: only the named hosts receive the file; a name no agent answers for fails the command', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'payload');
  fs.writeFileSync(file, pseudoRandom(3 * MiB, 4));
  const nats = await natsFor(t);
  await startDftfs(t, ['agent', ...hostArgs(nats, 'hA', path.join(dir, 'hA'))]);
  const b = await startDftfs(t, ['agent', ...hostArgs(nats, 'hB', path.join(dir, 'hB'))]);
  const r = await runDftfs(['bcast', file, '--to', 'hB', '--json', ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { streamed: boolean; receivers: Array<{ agent: string; ok: boolean }>; phases: Record<string, number> };
  assert.deepEqual(res.receivers.map((x) => [x.agent, x.ok]), [[b.agent, true]]);
  assert.equal(res.streamed, false, 'a file of 3 chunks is hashed before its order leaves');
  assert.ok(res.phases.sent >= res.phases.hashed && res.phases.hashed > 0 && res.phases.found > 0, JSON.stringify(res.phases));
  const objects = (h: string) => fs.readdirSync(path.join(dir, h, 'store/objects'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
  assert.equal(objects('hB'), 1);
  assert.equal(fs.existsSync(path.join(dir, 'hA', 'store/objects')) ? objects('hA') : 0, 0, 'a host not named gets nothing');
  const missing = await runDftfs(['bcast', file, '--to', 'hB,hZ', ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /no agent answers for hZ/);
});

test('BUSY: a second agent of the same host is refused a slot at the origin and gets the chunks elsewhere', async (t) => {
  const dir = tempDir(t);
  const tree = treeWith(dir, { 'f.bin': pseudoRandom(12 * MiB, 3) });
  const nats = await natsFor(t);
  await startDftfs(t, ['serve', tree, '--bwlimit', '4m', ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  // Same host id, separate stores: no host lock between them, so both ask the origin.
  const first = runDftfs(['get', 'f.bin', path.join(dir, 'o1'), '--json', ...hostArgs(nats, 'hX', path.join(dir, 'x1'))]);
  await new Promise((r) => setTimeout(r, 800));
  const second = await runDftfs(['get', 'f.bin', path.join(dir, 'o2'), '--json', ...hostArgs(nats, 'hX', path.join(dir, 'x2'))]);
  const r1 = await first;
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(second.code, 0, second.stderr);
  const j2 = getJson(second.stdout);
  assert.ok(j2.busy > 0, `expected BUSY answers, got ${JSON.stringify(j2)}`);
  assert.ok(Object.keys(j2.bytesFrom).some((a) => a.startsWith('hX/')), 'it got chunks from the first agent of its host');
  assert.equal(b3sum(path.join(dir, 'o2')), b3sum(path.join(tree, 'f.bin')));
});

test('receivers that start together chain behind each other: the origin sends the file about once, not once per receiver', async (t) => {
  const dir = tempDir(t);
  const size = 16 * MiB; // 4 chunks of the TOC's 4 MiB
  const tree = treeWith(dir, { 'f.bin': pseudoRandom(size, 12) });
  const nats = await natsFor(t);
  // A slow origin: the three gets overlap, and whoever asks first is still receiving when the others ask.
  const origin = await startDftfs(t, ['serve', tree, '--bwlimit', '8m', ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  const hosts = ['hA', 'hB', 'hC'];
  const runs = await Promise.all(hosts.map((h) => runDftfs(['get', 'f.bin', path.join(dir, `out-${h}`), '--json', ...hostArgs(nats, h, path.join(dir, h))])));
  const sources = runs.map((r, i) => {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(b3sum(path.join(dir, `out-${hosts[i]}`)), b3sum(path.join(tree, 'f.bin')));
    return getJson(r.stdout).bytesFrom;
  });
  const fromOrigin = sources.reduce((n, s) => n + (s[origin.agent] ?? 0), 0);
  // Without the chain every receiver takes each chunk from the origin (3 × 16 MiB).
  assert.ok(fromOrigin <= 1.5 * size, `the origin sent ${fromOrigin / MiB} MiB for three receivers of ${size / MiB} MiB: ${JSON.stringify(sources)}`);
  const fromReceivers = sources.filter((s) => Object.keys(s).some((a) => /^h[ABC]\//.test(a)));
  assert.equal(fromReceivers.length, 2, `two receivers got the file from another: ${JSON.stringify(sources)}`);
});

test('gets of a directory that start together chain its small files too: each serves the next what it has written', async (t) => {
  const dir = tempDir(t);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'src'), { recursive: true });
  let total = 0;
  for (let i = 0; i < 300; i++) {
    const b = pseudoRandom(10_000 + ((i * 7919) % 30_000), 200 + i);
    fs.writeFileSync(path.join(tree, 'src', `f${i}.c`), b);
    total += b.length;
  }
  fs.writeFileSync(path.join(tree, 'big.bin'), pseudoRandom(6 * MiB, 13));
  total += 6 * MiB;
  const nats = await natsFor(t);
  const origin = await startDftfs(t, ['serve', tree, '--bwlimit', '4m', ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  const hosts = ['hA', 'hB', 'hC'];
  const runs = await Promise.all(hosts.map((h) => runDftfs(['get', '.', path.join(dir, `out-${h}`), '--json', ...hostArgs(nats, h, path.join(dir, h))])));
  const want = listing(tree);
  const sources = runs.map((r, i) => {
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(listing(path.join(dir, `out-${hosts[i]}`)), want);
    return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { bytesFrom: Record<string, number> }).bytesFrom;
  });
  const fromOrigin = sources.reduce((n, s) => n + (s[origin.agent] ?? 0), 0);
  // Without the chains the origin sends every small file to each receiver (2.2 × the tree here).
  assert.ok(fromOrigin <= 1.6 * total, `the origin sent ${(fromOrigin / MiB).toFixed(1)} MiB for three receivers of ${(total / MiB).toFixed(1)} MiB: ${JSON.stringify(sources)}`);
  assert.ok(sources.filter((s) => Object.keys(s).some((a) => /^h[ABC]\//.test(a))).length >= 2, `receivers got files from each other: ${JSON.stringify(sources)}`);
});

test('a serving peer killed mid-transfer: the fetch completes from another source', async (t) => {
  const dir = tempDir(t);
  const tree = treeWith(dir, { 'f.bin': pseudoRandom(16 * MiB, 4) });
  const nats = await natsFor(t);
  const origin = await startDftfs(t, ['serve', tree, ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  const seeded = await runDftfs(['get', 'f.bin', path.join(dir, 'seed'), ...hostArgs(nats, 'hP', path.join(dir, 'hP'))]);
  assert.equal(seeded.code, 0, seeded.stderr);
  const peer = await startDftfs(t, ['agent', '--bwlimit', '2m', ...hostArgs(nats, 'hP', path.join(dir, 'hP'))]);
  const fetching = runDftfs(['get', 'f.bin', path.join(dir, 'out'), '--json', ...hostArgs(nats, 'hX', path.join(dir, 'hX'))]);
  await new Promise((r) => setTimeout(r, 1500));
  await peer.kill('SIGKILL');
  const r = await fetching;
  assert.equal(r.code, 0, r.stderr);
  const j = getJson(r.stdout);
  assert.ok((j.bytesFrom[peer.agent] ?? 0) > 0, 'the peer (preferred over the origin) served some chunks before it died');
  assert.ok((j.bytesFrom[origin.agent] ?? 0) > 0, 'the origin served the rest');
  assert.equal(b3sum(path.join(dir, 'out')), b3sum(path.join(tree, 'f.bin')));
});

test('a corrupt chunk from a peer is rejected, fetched elsewhere, and the peer reported', async (t) => {
  const dir = tempDir(t);
  const content = pseudoRandom(6 * MiB, 5);
  const tree = treeWith(dir, { 'f.bin': content });
  const nats = await natsFor(t);
  await startDftfs(t, ['serve', tree, ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  // A lying peer: it claims the whole object and serves every chunk with one byte flipped.
  const evil = new PeerServer({
    identity: { agent: 'evil/1', host: 'hE' }, cluster: 'test',
    source: { async readChunk(req) { const b = Buffer.from(content.subarray(req.offset, req.offset + req.length)); b[0]! ^= 1; return b; } },
  });
  const port = await evil.listen(0, '127.0.0.1');
  const bus = await Bus.connect({ url: nats.url, cluster: 'test', name: 'evil' });
  try {
  const liar = { agent: 'evil/1', host: 'hE', ip: '127.0.0.1', port };
  bus.subscribe(bus.subject('who'), (_b, reply) => reply({ ...liar, have: 'all' }));
  bus.publish(bus.subject('have'), { ...liar, objects: [digestBytes(content)] });
  const reports: Array<Record<string, unknown>> = [];
  bus.subscribe(bus.subject('report'), (b) => void reports.push(b));
  await bus.flush();

  const r = await runDftfs(['get', 'f.bin', path.join(dir, 'out'), '--json', ...hostArgs(nats, 'hX', path.join(dir, 'hX'))]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(b3sum(path.join(dir, 'out')), digestBytes(content));
  assert.equal(getJson(r.stdout).bytesFrom['evil/1'], undefined, 'nothing from the liar was kept');
  await bus.flush();
  assert.ok(reports.some((x) => x.agent === 'evil/1' && /does not match/.test(String(x.detail))), JSON.stringify(reports));
  } finally {
    // Before the test's nats-server stops (t.after): a client draining into a dead server waits.
    await bus.close();
    await evil.close();
  }
});

test('a batch of small files from a holder that sends wrong bytes: nothing wrong is stored, every file comes from another source, the holder is reported', async (t) => {
  const dir = tempDir(t);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 40; i++) files[`f${i}`] = pseudoRandom(3000 + i, 300 + i);
  const tree = treeWith(dir, files);
  const nats = await natsFor(t);
  await startDftfs(t, ['serve', tree, ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  const byDigest = new Map(Object.values(files).map((b) => [digestBytes(b), b]));
  // The batch's holder (as the mount's hint would name it) flips a byte of everything it sends.
  const evil = new PeerServer({
    identity: { agent: 'evil/1', host: 'hE' }, cluster: 'test',
    source: { async readChunk(req) { const b = Buffer.from(byDigest.get(req.object as Digest)!); b[0]! ^= 1; return b; } },
  });
  const port = await evil.listen(0, '127.0.0.1');
  const agent = await Agent.start({ home: path.join(dir, 'h1'), cluster: 'test', nats: nats.url, hostId: 'h1', advertise: '127.0.0.1' });
  const reports: Array<Record<string, unknown>> = [];
  agent.bus.subscribe(agent.bus.subject('report'), (b) => void reports.push(b));
  try {
    const descs = [...byDigest.keys()].map((digest) => ({ digest, size: byDigest.get(digest)!.length, chunks: [{ chunkOffset: 0, chunkSize: byDigest.get(digest)!.length, chunkDigest: digest }] }));
    const hint = { agent: 'evil/1', host: 'hE', ip: '127.0.0.1', port };
    const r = await agent.fetchMany(descs, { hints: [hint] });
    assert.deepEqual({ objects: r.objects, fetched: r.fetched }, { objects: 40, fetched: 40 });
    for (const [digest, bytes] of byDigest) assert.ok(fs.readFileSync(agent.store.objectPath(digest)).equals(bytes), `${digest} is the right bytes`);
    await agent.bus.flush();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(reports.some((x) => x.agent === 'evil/1'), 'the holder was reported');
  } finally {
    await agent.close();
    await evil.close();
  }
});

test('garbage on an agent\'s port closes that connection; the agent keeps serving', async (t) => {
  const dir = tempDir(t);
  const tree = treeWith(dir, { 'a.txt': Buffer.from('still served\n') });
  const nats = await natsFor(t);
  const origin = await startDftfs(t, ['serve', tree, ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  const sock = net.connect(origin.port, '127.0.0.1');
  sock.on('error', () => undefined);
  sock.resume();
  sock.write(Buffer.alloc(64, 0xff));
  await new Promise((r) => sock.once('close', r));
  const r = await runDftfs(['get', 'a.txt', path.join(dir, 'out'), ...hostArgs(nats, 'h1', path.join(dir, 'h1'))]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(dir, 'out'), 'utf8'), 'still served\n');
});

test('with a cluster secret, a peer that does not know it gets nothing', async (t) => {
  const dir = tempDir(t);
  const tree = treeWith(dir, { 'a.txt': Buffer.from('secret stuff\n') });
  const nats = await natsFor(t);
  await startDftfs(t, ['serve', tree, '--secret', 'k1', ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  const bad = await runDftfs(['get', 'a.txt', path.join(dir, 'bad'), '--secret', 'k2', ...hostArgs(nats, 'h1', path.join(dir, 'h1'))]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /authentication failed/);
  assert.equal(fs.existsSync(path.join(dir, 'bad')), false);
  const good = await runDftfs(['get', 'a.txt', path.join(dir, 'good'), ...hostArgs(nats, 'h1', path.join(dir, 'h1'))], { env: { DFTFS_SECRET: 'k1' } });
  assert.equal(good.code, 0, good.stderr);
  assert.equal(fs.readFileSync(path.join(dir, 'good'), 'utf8'), 'secret stuff\n');
});

test('--tls: agents that share the secret move files over TLS; a plain agent is told why it gets nothing', async (t) => {
  const dir = tempDir(t);
  const tree = treeWith(dir, { 'a.bin': pseudoRandom(5 * MiB + 7, 11) });
  const nats = await natsFor(t);
  await startDftfs(t, ['serve', tree, '--tls', '--secret', 'k1', ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  const good = await runDftfs(['get', 'a.bin', path.join(dir, 'good'), ...hostArgs(nats, 'h1', path.join(dir, 'h1'))], { env: { DFTFS_SECRET: 'k1', DFTFS_TLS: '1' } });
  assert.equal(good.code, 0, good.stderr);
  assert.equal(b3sum(path.join(dir, 'good')), b3sum(path.join(tree, 'a.bin')));

  const plain = await runDftfs(['get', 'a.bin', path.join(dir, 'plain'), '--secret', 'k1', ...hostArgs(nats, 'h2', path.join(dir, 'h2'))]);
  assert.equal(plain.code, 1);
  assert.match(plain.stderr, /requires TLS/);
  const wrong = await runDftfs(['get', 'a.bin', path.join(dir, 'wrong'), '--tls', '--secret', 'k2', ...hostArgs(nats, 'h3', path.join(dir, 'h3'))]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /TLS handshake/);
  assert.equal(fs.existsSync(path.join(dir, 'plain')) || fs.existsSync(path.join(dir, 'wrong')), false);

  const noSecret = await runDftfs(['get', 'a.bin', path.join(dir, 'x'), '--tls', ...hostArgs(nats, 'h4', path.join(dir, 'h4'))]);
  assert.equal(noSecret.code, 2);
  assert.match(noSecret.stderr, /--tls needs a cluster secret/);
});

test('nats-server restarted mid-transfer: the transfer completes and agents reconnect', async (t) => {
  const dir = tempDir(t);
  const tree = treeWith(dir, { 'f.bin': pseudoRandom(12 * MiB, 6) });
  const nats = await natsFor(t);
  await startDftfs(t, ['serve', tree, '--bwlimit', '4m', ...hostArgs(nats, 'h0', path.join(dir, 'h0'))]);
  const fetching = runDftfs(['get', 'f.bin', path.join(dir, 'out'), ...hostArgs(nats, 'h1', path.join(dir, 'h1'))]);
  await new Promise((r) => setTimeout(r, 1200));
  await nats.stop();
  await new Promise((r) => setTimeout(r, 500));
  await natsFor(t, nats.port);
  const r = await fetching;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(b3sum(path.join(dir, 'out')), b3sum(path.join(tree, 'f.bin')));
  // The long-running origin resubscribed: a new client finds it through the new server.
  await new Promise((r) => setTimeout(r, 1000));
  const again = await runDftfs(['get', 'f.bin', path.join(dir, 'out2'), ...hostArgs(nats, 'h2', path.join(dir, 'h2'))]);
  assert.equal(again.code, 0, again.stderr);
});
