import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { indexTree } from '../../src/indexer/index.js';
import { MAX_CHUNK_BYTES, decodeToc, encodeToc, type TocEntry } from '../../src/toc/index.js';
import { b3sum, b3sumBytes, pseudoRandom, runDftfs, tempDir } from '../helpers.js';
import { indexFixture } from './fixture.js';

const MiB4 = MAX_CHUNK_BYTES;

const setup = indexFixture;

const byName = (entries: TocEntry[]) => new Map(entries.map((e) => [e.name, e]));

test('chunk boundaries: 0 bytes, 1 byte, exactly 4 MiB, 4 MiB + 1, several chunks; digests equal b3sum', async (t) => {
  const { root, tree, index } = setup(t);
  const sizes: Record<string, number> = { empty: 0, one: 1, exact: MiB4, plus1: MiB4 + 1, three: 2 * MiB4 + 12345 };
  const contents: Record<string, Buffer> = {};
  for (const [name, size] of Object.entries(sizes)) {
    contents[name] = pseudoRandom(size, size + 3);
    fs.writeFileSync(path.join(tree, name), contents[name]!);
  }
  const { toc } = await index();
  decodeToc(encodeToc(toc)); // what we produce is what we accept
  const e = byName(toc.entries);
  const chunkSizes = (n: string) => e.get(n)!.chunks!.map((c) => c.chunkSize);
  assert.deepEqual(chunkSizes('empty'), []);
  assert.deepEqual(chunkSizes('one'), [1]);
  assert.deepEqual(chunkSizes('exact'), [MiB4]);
  assert.deepEqual(chunkSizes('plus1'), [MiB4, 1]);
  assert.deepEqual(chunkSizes('three'), [MiB4, MiB4, 12345]);
  for (const name of Object.keys(sizes)) {
    const entry = e.get(name)!;
    assert.equal(entry.digest, b3sum(path.join(tree, name)), `${name} whole-file digest`);
    assert.equal(entry.size, sizes[name]);
    for (const c of entry.chunks!) {
      assert.equal(c.chunkDigest, b3sumBytes(root, contents[name]!.subarray(c.chunkOffset, c.chunkOffset + c.chunkSize)), `${name} chunk at ${c.chunkOffset}`);
    }
  }
});

test('types, modes, modtimes, symlinks and hardlinks are recorded', async (t) => {
  const { tree, index } = setup(t);
  fs.mkdirSync(path.join(tree, 'bin'));
  fs.writeFileSync(path.join(tree, 'bin/tool'), '#!/bin/sh\n');
  fs.chmodSync(path.join(tree, 'bin/tool'), 0o755);
  fs.symlinkSync('bin/tool', path.join(tree, 'tool-link'));
  fs.linkSync(path.join(tree, 'bin/tool'), path.join(tree, 'tool-hard'));
  fs.utimesSync(path.join(tree, 'bin/tool'), 1_700_000_000.5, 1_700_000_000.5);
  const { toc } = await index();
  const e = byName(toc.entries);
  assert.equal(e.get('.')!.type, 'dir');
  assert.equal(e.get('bin')!.type, 'dir');
  assert.deepEqual([e.get('bin/tool')!.type, e.get('bin/tool')!.mode], ['reg', 0o755]);
  assert.equal(e.get('bin/tool')!.modtime, '2023-11-14T22:13:20.500000000Z');
  assert.deepEqual([e.get('tool-link')!.type, e.get('tool-link')!.linkName], ['symlink', 'bin/tool']);
  assert.deepEqual([e.get('tool-hard')!.type, e.get('tool-hard')!.linkName], ['hardlink', 'bin/tool']);
});

test('a re-index reads only files whose size, mtime, ctime or inode changed', async (t) => {
  const { tree, index } = setup(t);
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(tree, `f${i}`), pseudoRandom(10_000 + i, i + 1));
  const first = await index();
  assert.equal(first.stats.filesHashed, 50);
  assert.ok(first.stats.bytesRead >= first.stats.bytesTotal);

  const again = await index();
  assert.equal(again.stats.bytesRead, 0, 'nothing changed: nothing read');
  assert.equal(again.stats.filesReused, 50);
  assert.equal(again.toc.root, first.toc.root);

  // Same size, content rewritten in place (mtime and ctime move).
  fs.writeFileSync(path.join(tree, 'f7'), pseudoRandom(10_007, 999));
  // Same bytes but a new inode (replaced by rename).
  fs.copyFileSync(path.join(tree, 'f9'), path.join(tree, 'f9.new'));
  fs.renameSync(path.join(tree, 'f9.new'), path.join(tree, 'f9'));
  // Only the ctime moves (chmod back and forth keeps the mode).
  fs.chmodSync(path.join(tree, 'f11'), 0o600);
  fs.chmodSync(path.join(tree, 'f11'), 0o644);
  const third = await index();
  assert.equal(third.stats.filesHashed, 3);
  assert.equal(third.stats.bytesRead, 10_007 + 10_009 + 10_011);
  assert.equal(byName(third.toc.entries).get('f7')!.digest, b3sum(path.join(tree, 'f7')));
  assert.notEqual(third.toc.root, first.toc.root);

  fs.rmSync(path.join(tree, 'f3'));
  const fourth = await index();
  assert.equal(fourth.stats.bytesRead, 0);
  assert.equal(byName(fourth.toc.entries).has('f3'), false);
});

test('a state of whole slices of records (2 × 1024 files) is written and read back; a held state is used instead of the file', async (t) => {
  const { tree, statePath, index } = setup(t);
  for (let i = 0; i < 2048; i++) fs.writeFileSync(path.join(tree, `f${i}`), `file ${i}`);
  const first = await index();
  assert.equal(first.stats.filesHashed, 2048);
  assert.equal(Object.keys(JSON.parse(fs.readFileSync(statePath, 'utf8')).files).length, 2048);
  const again = await index();
  assert.equal(again.stats.bytesRead, 0, 'the state file was read back whole');
  assert.deepEqual(again.stats.warnings, []);

  const held = {};
  await index({ held });
  fs.rmSync(statePath);
  const fromMemory = await index({ held });
  assert.equal(fromMemory.stats.bytesRead, 0, 'the held state, not the (missing) file, was used');
  assert.equal(fromMemory.toc.root, first.toc.root);
});

test('a re-index with a held state reuses the entries of unchanged files; a chmod or a rewrite makes a new one', async (t) => {
  const { tree, index } = setup(t);
  for (const n of ['a', 'b', 'c']) fs.writeFileSync(path.join(tree, n), `file ${n}`);
  const held = {};
  const first = byName((await index({ held })).toc.entries);
  fs.chmodSync(path.join(tree, 'b'), 0o600);
  fs.writeFileSync(path.join(tree, 'c'), 'file c, changed');
  const second = await index({ held });
  const next = byName(second.toc.entries);
  assert.equal(next.get('a'), first.get('a'), 'unchanged: the same entry object');
  assert.notEqual(next.get('b'), first.get('b'));
  assert.equal(next.get('b')!.mode, 0o600, 'the new mode shows');
  assert.equal(next.get('b')!.digest, first.get('b')!.digest);
  assert.equal(next.get('c')!.digest, b3sum(path.join(tree, 'c')));
  assert.equal(second.stats.filesHashed, 2, 'a chmod changes the ctime: b is read again, like c');
  // And the TOC is what a fresh index of the tree gives.
  assert.equal(second.toc.root, (await index({ held: {} })).toc.root);
});

test('a file modified while it is being hashed is detected and hashed again', async (t) => {
  const { tree, index } = setup(t);
  const file = path.join(tree, 'busy');
  fs.writeFileSync(file, pseudoRandom(MiB4 + 100, 1));
  const attempts: number[] = [];
  const { toc, stats } = await index({
    afterHash: (name, attempt) => {
      attempts.push(attempt);
      if (attempt === 1) fs.appendFileSync(file, 'written during hashing');
    },
  });
  assert.deepEqual(attempts, [1, 2]);
  assert.equal(byName(toc.entries).get('busy')!.digest, b3sum(file));
  assert.equal(byName(toc.entries).get('busy')!.size, fs.statSync(file).size);
  assert.equal(stats.warnings.length, 0);

  // One that never settles is skipped with a warning rather than chased forever.
  fs.appendFileSync(file, 'changed since the last index');
  const restless = await index({ afterHash: () => fs.appendFileSync(file, 'x') });
  assert.equal(byName(restless.toc.entries).has('busy'), false);
  assert.deepEqual(restless.stats.warnings.map((w) => w.code), ['KEEPS_CHANGING']);
});

test('bad inputs: special files, dangling and looping symlinks, odd names are handled, not fatal', async (t) => {
  const { tree, index } = setup(t);
  fs.writeFileSync(path.join(tree, 'ok'), 'fine');
  execFileSync('mkfifo', [path.join(tree, 'fifo')]);
  execFileSync('mknod', [path.join(tree, 'null-dev'), 'c', '1', '3']);
  const server = net.createServer().listen(path.join(tree, 'sock'));
  t.after(() => server.close());
  await new Promise((r) => server.once('listening', r));
  fs.symlinkSync('does-not-exist', path.join(tree, 'dangling'));
  fs.symlinkSync('loop-b', path.join(tree, 'loop-a'));
  fs.symlinkSync('loop-a', path.join(tree, 'loop-b'));
  fs.symlinkSync('/etc/passwd', path.join(tree, 'outside'));
  fs.writeFileSync(path.join(tree, 'new\nline'), 'a name with a newline');
  fs.writeFileSync(path.join(tree, 'ünïcødé'), 'utf-8 name');
  fs.writeFileSync(path.join(tree, '.ok.dftfs-0a1b2c3d'), 'an output dftfs is still placing: not part of the tree');
  fs.writeFileSync(path.join(tree, '.ok.dftfs-notours'), 'a user file that only looks alike');
  fs.writeFileSync(Buffer.concat([Buffer.from(tree + '/bad-'), Buffer.from([0xff, 0xfe]), Buffer.from('-name')]), 'latin1 name');

  const { toc, stats } = await index();
  const e = byName(toc.entries);
  assert.deepEqual([...e.keys()].sort(), ['.', '.ok.dftfs-notours', 'dangling', 'loop-a', 'loop-b', 'new\nline', 'ok', 'outside', 'ünïcødé'].sort());
  assert.equal(e.get('new\nline')!.digest, b3sum(path.join(tree, 'new\nline')));
  assert.equal(e.get('loop-a')!.linkName, 'loop-b');
  const codes = stats.warnings.map((w) => w.code).sort();
  assert.deepEqual(codes, ['NON_UTF8_NAME', 'SPECIAL_FILE', 'SPECIAL_FILE', 'SPECIAL_FILE', 'SYMLINK_OUTSIDE']);
  assert.match(stats.warnings.find((w) => w.path === 'fifo')!.message, /fifo.*skipped/);
  decodeToc(encodeToc(toc));
});

test('a corrupt state file is rebuilt with a warning; the index is still right', async (t) => {
  const { tree, statePath, index } = setup(t);
  fs.writeFileSync(path.join(tree, 'a'), 'aaa');
  const good = await index();
  for (const garbage of ['{not json', '{"version":1,"chunkBytes":4194304,"files":{"a":{"size":"x"}}}', '']) {
    fs.writeFileSync(statePath, garbage);
    const r = await index();
    assert.deepEqual(r.stats.warnings.map((w) => w.code), ['STATE_REBUILT'], JSON.stringify(garbage));
    assert.equal(r.toc.root, good.toc.root);
    const healed = await index();
    assert.equal(healed.stats.warnings.length, 0, 'the state was rewritten whole');
    assert.equal(healed.stats.bytesRead, 0);
  }
});

test('a DIR that does not exist or is not a directory is a clear error', async (t) => {
  const { root, pool } = setup(t);
  await assert.rejects(indexTree(path.join(root, 'nope'), { pool }), { code: 'ERR_DFTFS_NOT_FOUND', message: /no such directory/ });
  fs.writeFileSync(path.join(root, 'file'), '');
  await assert.rejects(indexTree(path.join(root, 'file'), { pool }), { code: 'ERR_DFTFS_NOT_A_DIRECTORY' });
});

test('unreadable files and directories are skipped with a warning (run as an unprivileged user)', async (t) => {
  const root = tempDir(t);
  fs.chmodSync(root, 0o755);
  const tree = path.join(root, 'tree');
  fs.mkdirSync(path.join(tree, 'closed'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'readable'), 'yes');
  fs.writeFileSync(path.join(tree, 'secret'), 'no');
  fs.writeFileSync(path.join(tree, 'closed/inside'), 'no');
  fs.chmodSync(path.join(tree, 'secret'), 0o000);
  fs.chmodSync(path.join(tree, 'closed'), 0o000);
  const r = await runDftfs(['index', tree, '--json', '--no-state'], { user: 'nobody', env: { DFTFS_HOME: path.join(root, 'home') } });
  assert.equal(r.code, 0, r.stderr);
  const names = JSON.parse(r.stdout).entries.map((e: TocEntry) => e.name);
  assert.deepEqual(names, ['.', 'closed', 'readable']);
  assert.match(r.stderr, /warning: closed: cannot list directory \(EACCES\); skipped/);
  assert.match(r.stderr, /warning: secret: .*EACCES.*skipped/);
});

test('a small change is journalled, not a rewrite; a torn journal line costs only a re-hash', async (t) => {
  const { tree, statePath, index } = setup(t);
  for (let i = 0; i < 100; i++) fs.writeFileSync(path.join(tree, `f${i}`), `file ${i}`);
  await index();
  const baseBefore = fs.readFileSync(statePath);
  fs.writeFileSync(path.join(tree, 'f5'), 'changed');
  fs.writeFileSync(path.join(tree, 'f6'), 'changed too');
  const r = await index();
  assert.equal(r.stats.filesHashed, 2);
  assert.deepEqual(fs.readFileSync(statePath), baseBefore, 'the base was not rewritten');
  assert.equal(fs.readFileSync(statePath + '.log', 'utf8').trim().split('\n').length, 2);
  assert.equal((await index()).stats.bytesRead, 0, 'the journal is applied on load');

  // Tear the last journal line, as a crash mid-append would.
  const log = fs.readFileSync(statePath + '.log', 'utf8');
  fs.writeFileSync(statePath + '.log', log.slice(0, log.length - 20));
  const torn = await index();
  assert.equal(torn.stats.filesHashed, 1, 'only the path of the torn line is hashed again');
  assert.equal(torn.stats.warnings.length, 0);
  assert.equal(byName(torn.toc.entries).get('f6')!.digest, b3sum(path.join(tree, 'f6')));
});
