import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool } from '../../src/net/buffer-pool.js';
import { FrameDecoder, MAX_FRAME_BYTES, encodeFrame, type Frame } from '../../src/net/index.js';
import { pseudoRandom } from '../helpers.js';

test('frames round-trip, whatever way the bytes are split', () => {
  const frames: Frame[] = [
    { type: 'HELLO', body: { cluster: 'c', agent: 'a', host: 'h', nonce: 'n', proof: '' } },
    { type: 'DATA', requestId: 7, bytes: pseudoRandom(100_000, 3) },
    { type: 'GET', body: { id: 1, object: 'x' } },
    { type: 'DATA', requestId: 0xffffffff, bytes: Buffer.alloc(0) },
  ];
  const wire = Buffer.concat(frames.map(encodeFrame));
  for (const step of [1, 3, 7, 4096, wire.length]) {
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (let i = 0; i < wire.length; i += step) got.push(...d.push(wire.subarray(i, i + step)));
    assert.deepEqual(got, frames, `split every ${step} bytes`);
  }
});

test('malformed frames are refused: oversize, wrong version, unknown type, bad JSON', () => {
  const head = (len: number, ver: number, type: number) => {
    const b = Buffer.alloc(6);
    b.writeUInt32BE(len, 0);
    b[4] = ver;
    b[5] = type;
    return b;
  };
  assert.throws(() => new FrameDecoder().push(head(MAX_FRAME_BYTES + 1, 1, 5)), { code: 'ERR_DFTFS_PROTOCOL', message: /length/ });
  assert.throws(() => new FrameDecoder().push(head(0xffffffff, 1, 5)), { code: 'ERR_DFTFS_PROTOCOL' });
  assert.throws(() => new FrameDecoder().push(head(1, 1, 5)), { code: 'ERR_DFTFS_PROTOCOL' });
  assert.throws(() => new FrameDecoder().push(head(2, 9, 2)), { code: 'ERR_DFTFS_PROTOCOL', message: /version 9/ });
  assert.throws(() => new FrameDecoder().push(head(2, 1, 99)), { code: 'ERR_DFTFS_PROTOCOL', message: /unknown frame type/ });
  assert.throws(() => new FrameDecoder().push(Buffer.concat([head(5, 1, 2), Buffer.from('{{{')])), { code: 'ERR_DFTFS_PROTOCOL', message: /not JSON/ });
  assert.throws(() => new FrameDecoder().push(Buffer.concat([head(4, 1, 2), Buffer.from('[]')])), { code: 'ERR_DFTFS_PROTOCOL', message: /not an object/ });
  assert.throws(() => encodeFrame({ type: 'DATA', requestId: 1, bytes: Buffer.alloc(MAX_FRAME_BYTES) }), { code: 'ERR_DFTFS_PROTOCOL' });
});

test('a frame spread over many socket reads is copied once into a buffer of its own size', () => {
  const big: Frame = { type: 'DATA', requestId: 3, bytes: pseudoRandom(1 << 20, 4) };
  const next: Frame = { type: 'GET', body: { id: 2, object: 'y' } };
  const wire = Buffer.concat([encodeFrame(big), encodeFrame(next)]);
  const d = new FrameDecoder();
  const got: Frame[] = [];
  // Socket-sized reads, each its own allocation (as a socket hands them over).
  for (let i = 0; i < wire.length; i += 65536) got.push(...d.push(Buffer.from(wire.subarray(i, i + 65536))));
  assert.deepEqual(got, [big, next]);
  const bytes = (got[0] as { bytes: Buffer }).bytes;
  // Its memory is the frame's alone: no read it arrived in (nor the next frame) is kept alive by it.
  assert.equal(bytes.buffer.byteLength, bytes.length + 6);
});

test('a side that receives no DATA refuses a DATA header before allocating its body; frames without a body decode at once', () => {
  const head = Buffer.alloc(6);
  head.writeUInt32BE(MAX_FRAME_BYTES, 0);
  head[4] = 1;
  head[5] = 5; // DATA
  assert.throws(() => new FrameDecoder({ acceptsData: false }).push(head), { code: 'ERR_DFTFS_PROTOCOL', message: /unexpected DATA/ });
  assert.deepEqual(new FrameDecoder().push(head), [], 'a receiving side waits for the body');
  // A DATA frame with no room for its request id, split after its head: refused once its head is in.
  const empty = Buffer.from([0, 0, 0, 2, 1, 5]);
  const d = new FrameDecoder();
  assert.deepEqual(d.push(empty.subarray(0, 3)), []);
  assert.throws(() => d.push(empty.subarray(3)), { code: 'ERR_DFTFS_PROTOCOL', message: /request id/ });
});

test('with transient input (one read buffer, reused), nothing decoded points into it', () => {
  const frames: Frame[] = [
    { type: 'DATA', requestId: 1, bytes: pseudoRandom(1000, 5) }, // within one read: decoded by copy
    { type: 'GET', body: { id: 2, object: 'z'.repeat(300) } }, // split over reads: its pieces kept by copy
    { type: 'DATA', requestId: 3, bytes: pseudoRandom(200_000, 6) },
  ];
  const wire = Buffer.concat(frames.map(encodeFrame));
  const read = Buffer.alloc(4096);
  const taken: number[] = [];
  const d = new FrameDecoder({ transient: true, dataBuffer: (n) => { taken.push(n); return Buffer.alloc(n); } });
  const got: Frame[] = [];
  for (let i = 0; i < wire.length; i += read.length) {
    const n = wire.copy(read, 0, i, i + read.length);
    got.push(...d.push(read.subarray(0, n)));
    read.fill(0xee); // the socket's next read overwrites it
  }
  assert.deepEqual(got, frames);
  assert.deepEqual(taken, [1006, 200_006], 'every DATA body came from dataBuffer');
});

test('a buffer pool hands back what was given back, once, and keeps at most `keep`', () => {
  const pool = new BufferPool(1024, 2);
  const a = pool.take(1000);
  assert.equal(a.length, 1000);
  pool.give(a.subarray(6)); // a view of it is enough
  pool.give(a); // given twice: kept once
  assert.equal(pool.idle, 1);
  const b = pool.take(10);
  assert.equal(b.buffer, a.buffer, 'the same memory again');
  assert.equal(b.length, 10);
  assert.equal(pool.idle, 0);
  pool.give(Buffer.alloc(512)); // another size: not kept
  assert.equal(pool.idle, 0);
  pool.give(b);
  pool.give(Buffer.allocUnsafeSlow(1024));
  pool.give(Buffer.allocUnsafeSlow(1024));
  assert.equal(pool.idle, 2);
});
