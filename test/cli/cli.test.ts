import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TocEntry } from '../../src/toc/index.js';
import { b3sum, pseudoRandom, runDftfs, tempDir } from '../helpers.js';

test('--help explains every command and the exit codes; --version prints the version', async () => {
  const help = await runDftfs(['--help']);
  assert.equal(help.code, 0);
  for (const cmd of ['index', 'export', 'import']) assert.match(help.stdout, new RegExp(`\\b${cmd}\\b`));
  assert.match(help.stdout, /Exit codes: 0 success, 1 failure, 2 usage error/);
  const sub = await runDftfs(['index', '--help']);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /--json/);
  assert.match(sub.stdout, /--threads/);
  assert.doesNotMatch(sub.stdout, /\x1b\[/, 'no colour codes when not on a terminal');
  const version = await runDftfs(['--version']);
  const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
  assert.equal(version.stdout.trim(), pkg.version);
});

test('exit codes: 2 for usage errors, 1 for failures, with a message a user can act on', async (t) => {
  const dir = tempDir(t);
  const unknown = await runDftfs(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown command frobnicate/);
  const badThreads = await runDftfs(['index', dir, '--threads', 'many']);
  assert.equal(badThreads.code, 2);
  assert.match(badThreads.stderr, /--threads takes a whole number/);
  const missing = await runDftfs(['index', path.join(dir, 'nope')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no such directory/);
  const noArchive = await runDftfs(['export', dir]);
  assert.equal(noArchive.code, 2);
});

test('dftfs index --json prints the TOC; each file digest equals b3sum', async (t) => {
  const dir = tempDir(t);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'small'), 'hello\n');
  fs.writeFileSync(path.join(tree, 'sub/big'), pseudoRandom((4 << 20) * 2 + 5, 4));
  const r = await runDftfs(['index', tree, '--json'], { env: { DFTFS_HOME: path.join(dir, 'home') } });
  assert.equal(r.code, 0, r.stderr);
  const toc = JSON.parse(r.stdout) as { root: string; entries: TocEntry[] };
  const regs = toc.entries.filter((e) => e.type === 'reg');
  assert.deepEqual(regs.map((e) => e.name), ['small', 'sub/big']);
  for (const e of regs) assert.equal(e.digest, b3sum(path.join(tree, e.name)));
  assert.deepEqual(regs[1]!.chunks!.map((c) => [c.chunkOffset, c.chunkSize]), [[0, 4 << 20], [4 << 20, 4 << 20], [8 << 20, 5]]);
  assert.match(r.stderr, /read 16\.0 MiB/);
  // The second run reads nothing: the state lives under DFTFS_HOME.
  const again = await runDftfs(['index', tree], { env: { DFTFS_HOME: path.join(dir, 'home') } });
  assert.match(again.stdout, /read 0 B \(0 bytes\): 0 files hashed, 2 unchanged/);
  assert.match(again.stdout, new RegExp(toc.root));
});

test('dftfs export / import round trip; a tampered archive is refused with exit 1', async (t) => {
  const dir = tempDir(t);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'a'), 'A'.repeat(5000));
  fs.writeFileSync(path.join(tree, 'b'), 'B'.repeat(5000));
  const archive = path.join(dir, 'v1.tar');
  const exp = await runDftfs(['export', tree, archive], { env: { DFTFS_HOME: path.join(dir, 'h1') } });
  assert.equal(exp.code, 0, exp.stderr);
  const imp = await runDftfs(['import', archive, '--to', path.join(dir, 'copy')], { env: { DFTFS_HOME: path.join(dir, 'h2') } });
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stdout, /^blake3:[0-9a-f]{64}\n$/);
  assert.equal(fs.readFileSync(path.join(dir, 'copy/b'), 'utf8'), 'B'.repeat(5000));

  const bytes = fs.readFileSync(archive);
  const at = bytes.indexOf('B'.repeat(5000));
  bytes[at + 100] = 'C'.charCodeAt(0);
  fs.writeFileSync(archive, bytes);
  const bad = await runDftfs(['import', archive, '--to', path.join(dir, 'copy2')], { env: { DFTFS_HOME: path.join(dir, 'h3') } });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /refused "b": .*does not match/);
  assert.equal(fs.existsSync(path.join(dir, 'copy2/b')), false);
  assert.equal(fs.readFileSync(path.join(dir, 'copy2/a'), 'utf8'), 'A'.repeat(5000));
});
