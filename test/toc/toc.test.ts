import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { digestBytes } from '../../src/hash/index.js';
import {
  decodeToc, encodeToc, formatModtime, merkleRoot, parseModtime, resolveInside, symlinkStaysInside,
  type Toc, type TocEntry,
} from '../../src/toc/index.js';

const T = '2026-11-21T05:39:48.123456789Z';
const d = (s: string) => digestBytes(Buffer.from(s));

function sampleToc(): Toc {
  const entries: TocEntry[] = [
    { name: '.', type: 'dir', mode: 0o755, modtime: T },
    { name: 'a.txt', type: 'reg', mode: 0o644, modtime: T, size: 5, digest: d('hello'), chunks: [{ chunkOffset: 0, chunkSize: 5, chunkDigest: d('hello') }] },
    { name: 'empty', type: 'reg', mode: 0o644, modtime: T, size: 0, digest: digestBytes(new Uint8Array(0)), chunks: [] },
    { name: 'src', type: 'dir', mode: 0o755, modtime: T },
    { name: 'src/big', type: 'reg', mode: 0o755, modtime: T, size: 12, digest: d('whole'), chunks: [
      { chunkOffset: 0, chunkSize: 8, chunkDigest: d('c0') }, { chunkOffset: 8, chunkSize: 4, chunkDigest: d('c1') }] },
    { name: 'src/link', type: 'symlink', mode: 0o777, modtime: T, linkName: '../a.txt' },
    { name: 'src/hard', type: 'hardlink', mode: 0o644, modtime: T, linkName: 'a.txt' },
  ];
  return { version: 1, hashAlgorithm: 'blake3', chunkBytes: 8, root: merkleRoot(entries), generation: 3, entries };
}

/** Re-seals a tampered TOC with a matching root, so only the tampering is tested. */
function reseal(toc: Toc): Uint8Array {
  toc.root = merkleRoot(toc.entries);
  return encodeToc(toc);
}

test('a TOC round-trips through its canonical bytes', () => {
  const toc = sampleToc();
  assert.deepEqual(decodeToc(encodeToc(toc)), toc);
});

test('a TOC is encoded a slice of entries at a time, to exactly the bytes of JSON.stringify', () => {
  const entries: TocEntry[] = [{ name: '.', type: 'dir', mode: 0o755, modtime: T }];
  for (let i = 0; i < 5000; i++) {
    entries.push({ name: `f${i}`, type: 'reg', mode: 0o644, modtime: T, size: 1, digest: d(`${i}`), chunks: [{ chunkOffset: 0, chunkSize: 1, chunkDigest: d(`${i}`) }] });
  }
  const toc: Toc = { version: 1, hashAlgorithm: 'blake3', chunkBytes: 8, root: merkleRoot(entries), generation: 7, entries };
  assert.equal(Buffer.from(encodeToc(toc)).toString('utf8'), JSON.stringify(toc));
  const none: Toc = { ...toc, entries: [] };
  assert.equal(Buffer.from(encodeToc(none)).toString('utf8'), JSON.stringify(none));
});

test('the Merkle root changes with content, mode, time and names, not with entry order', () => {
  const base = sampleToc();
  const root = base.root;
  const shuffled = [...base.entries.slice(0, 1), ...base.entries.slice(1).reverse()];
  assert.equal(merkleRoot(shuffled), root);
  const variants: Array<(e: TocEntry[]) => void> = [
    (e) => { e[1]!.digest = d('other'); },
    (e) => { e[1]!.mode = 0o600; },
    (e) => { e[1]!.modtime = '2026-11-21T05:39:48.123456788Z'; },
    (e) => { e[5]!.linkName = '../empty'; },
    (e) => { e[2]!.name = 'empty2'; },
  ];
  for (const mutate of variants) {
    const t = sampleToc();
    mutate(t.entries);
    assert.notEqual(merkleRoot(t.entries), root);
  }
});

test('malformed TOCs are refused with a reason', () => {
  const cases: Array<[string, (t: Toc) => void, RegExp | string]> = [
    ['.. component', (t) => { t.entries[1]!.name = '../a.txt'; }, 'ERR_DFTFS_UNSAFE_PATH'],
    ['absolute path', (t) => { t.entries[1]!.name = '/etc/passwd'; }, 'ERR_DFTFS_UNSAFE_PATH'],
    ['duplicate name', (t) => { t.entries[2]!.name = 'a.txt'; }, /duplicate/],
    ['child before parent', (t) => { t.entries.splice(3, 1); }, /before its directory/],
    ['chunk gap', (t) => { t.entries[4]!.chunks![1]!.chunkOffset = 9; }, /chunk at 8/],
    ['chunks short of size', (t) => { t.entries[4]!.size = 13; }, /cover 12 bytes of 13/],
    ['oversize chunk', (t) => { t.entries[4]!.chunks![0]!.chunkSize = 9; t.entries[4]!.chunks![1]!.chunkOffset = 9; t.entries[4]!.size = 13; }, /chunk at 0/],
    ['single chunk digest differs', (t) => { t.entries[1]!.digest = d('x'); }, /single chunk/],
    ['bad digest of a single chunk', (t) => { t.entries[1]!.chunks![0]!.chunkDigest = 'blake3:xyz' as never; }, /single chunk digest differs/],
    ['bad digest of a chunk', (t) => { t.entries[4]!.chunks![1]!.chunkDigest = 'blake3:xyz' as never; }, /chunk at 8/],
    ['hardlink to nothing', (t) => { t.entries[6]!.linkName = 'nope'; }, /hardlink/],
    ['unknown type', (t) => { (t.entries[1] as { type: string }).type = 'fifo'; }, /unknown type/],
    ['bad modtime', (t) => { t.entries[1]!.modtime = 'yesterday'; }, /bad modtime/],
    ['mode out of range', (t) => { t.entries[1]!.mode = 0o170000; }, /bad mode/],
  ];
  for (const [label, mutate, expected] of cases) {
    const toc = sampleToc();
    mutate(toc);
    const bytes = reseal(toc);
    if (typeof expected === 'string') assert.throws(() => decodeToc(bytes), { code: expected }, label);
    else assert.throws(() => decodeToc(bytes), (err: Error & { code?: string }) => err.code === 'ERR_DFTFS_MALFORMED_TOC' && expected.test(err.message), label);
  }
});

test('a TOC whose root does not match its entries, or that is not a TOC at all, is refused', () => {
  const toc = sampleToc();
  toc.entries[1]!.mode = 0o600;
  assert.throws(() => decodeToc(encodeToc(toc)), /root does not match/);
  for (const junk of ['', 'not json', '[]', '{"version":2}', JSON.stringify({ ...sampleToc(), entries: 'x' })]) {
    assert.throws(() => decodeToc(Buffer.from(junk)), { code: 'ERR_DFTFS_MALFORMED_TOC' }, junk);
  }
});

test('modtimes keep nanoseconds both ways', () => {
  for (const ns of [0n, 1n, 1_763_703_588_123_456_789n, -1_500_000_000n]) {
    assert.equal(parseModtime(formatModtime(ns)), ns);
  }
  assert.equal(formatModtime(1_763_703_588_000_000_001n), '2025-11-21T05:39:48.000000001Z');
  assert.equal(parseModtime('2026-11-21T05:39:48Z'), 1_795_239_588_000_000_000n);
  assert.equal(parseModtime('2026-11-21 05:39:48'), undefined);
});

test('symlinks and names that escape the tree are recognised', () => {
  assert.equal(symlinkStaysInside('a/b', '../c'), true);
  assert.equal(symlinkStaysInside('a/b', 'c/../../d'), true);
  assert.equal(symlinkStaysInside('a/b', '../../c'), false);
  assert.equal(symlinkStaysInside('b', '..'), false);
  assert.equal(symlinkStaysInside('b', '/etc/passwd'), false);
  assert.equal(resolveInside('/r', 'a/b'), '/r/a/b');
  assert.throws(() => resolveInside('/r', 'a/../../x'), { code: 'ERR_DFTFS_UNSAFE_PATH' });
  assert.throws(() => resolveInside('/r', '/x'), { code: 'ERR_DFTFS_UNSAFE_PATH' });
  // Called again with the same root (its short way), and with roots that are not normalized.
  for (const root of ['/r', '/r/', '/r/./s/..', 'rel', '/']) {
    for (const name of ['a', 'a/b', '.', 'x.y/.hidden', '..a/b..']) {
      assert.equal(resolveInside(root, name), path.resolve(root, name), `${root} + ${name}`);
      assert.equal(resolveInside(root, name), path.resolve(root, name), `${root} + ${name}, again`);
    }
    for (const name of ['a/../../x', '../x', 'a//b', './a', 'a/.', '/x', 'a/', '']) {
      assert.throws(() => resolveInside(root, name), { code: 'ERR_DFTFS_UNSAFE_PATH' }, `${root} + ${JSON.stringify(name)}`);
    }
  }
});
