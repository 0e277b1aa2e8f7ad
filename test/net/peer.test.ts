import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { digestBytes } from '../../src/hash/index.js';
import { PeerClient, PeerServer, tlsKey, type GetRequest } from '../../src/net/index.js';
import { parseNotFound } from '../../src/net/messages.js';
import { pseudoRandom } from '../helpers.js';

const CHUNK = pseudoRandom(1 << 20, 5);
const OBJECT = digestBytes(CHUNK);

async function server(t: TestContext, opts: { secret?: string; slowMs?: number; tlsKey?: Buffer; onReject?: (reason: string) => void } = {}) {
  const s = new PeerServer({
    identity: { agent: 'srv', host: 'server-host' },
    cluster: 'test',
    secret: opts.secret,
    tlsKey: opts.tlsKey,
    onReject: (e) => opts.onReject?.(e.reason),
    source: {
      async readChunk(req: GetRequest) {
        if (opts.slowMs) await new Promise((r) => setTimeout(r, opts.slowMs));
        return req.object === OBJECT ? CHUNK.subarray(req.offset, req.offset + req.length) : undefined;
      },
    },
  });
  const port = await s.listen(0, '127.0.0.1');
  t.after(() => s.close());
  return port;
}

const client = async (t: TestContext, port: number, host: string, secret?: string, key?: Buffer) => {
  const c = await PeerClient.connect({ host: '127.0.0.1', port, cluster: 'test', identity: { agent: `a-${host}`, host }, secret, tlsKey: key });
  t.after(() => c.close());
  return c;
};

const req = { object: OBJECT, offset: 0, length: CHUNK.length, chunkDigest: OBJECT };

test('a client gets chunks over TCP, pipelined, compressed or not', async (t) => {
  const port = await server(t);
  const c = await client(t, port, 'h1');
  const [a, b, z] = await Promise.all([c.get(req), c.get({ ...req, offset: 10, length: 20 }), c.get({ ...req, compress: true })]);
  assert.equal(a.kind, 'data');
  assert.deepEqual(a.kind === 'data' && a.bytes, CHUNK);
  assert.deepEqual(b.kind === 'data' && b.bytes, CHUNK.subarray(10, 30));
  assert.deepEqual(z.kind === 'data' && z.bytes, CHUNK);
  assert.deepEqual(await c.get({ ...req, object: digestBytes(Buffer.from('other')) }), { kind: 'not-found' });
});

test('the buffer of a served chunk goes back to its source once written to the socket, or once compressed', async (t) => {
  const given: Buffer[] = [];
  const released: Buffer[] = [];
  const s = new PeerServer({
    identity: { agent: 'srv', host: 'server-host' }, cluster: 'test',
    source: {
      async readChunk(r: GetRequest) {
        const b = Buffer.from(CHUNK.subarray(r.offset, r.offset + r.length));
        given.push(b);
        return b;
      },
      releaseChunk: (b) => { released.push(b); },
    },
  });
  const port = await s.listen(0, '127.0.0.1');
  t.after(() => s.close());
  const c = await client(t, port, 'h1');
  const plain = await c.get(req);
  const packed = await c.get({ ...req, compress: true });
  assert.deepEqual(plain.kind === 'data' && plain.bytes, CHUNK);
  assert.deepEqual(packed.kind === 'data' && packed.bytes, CHUNK);
  // The write callback runs once the socket has taken the bytes: by the time the answer arrived.
  assert.equal(given.length, 2);
  assert.equal(released.length, 2);
  assert.ok(given.every((b) => released.includes(b)), 'the very buffers read are given back');
});

test('a peer receiving an object lists the chunks it has in its NOT_FOUND; a malformed list is refused', async (t) => {
  const receiving = digestBytes(Buffer.from('being received'));
  const s = new PeerServer({
    identity: { agent: 'srv', host: 'server-host' }, cluster: 'test',
    source: { async readChunk() { return undefined; }, heldChunks: (o) => (o === receiving ? [0, 2, 5] : undefined) },
  });
  const port = await s.listen(0, '127.0.0.1');
  t.after(() => s.close());
  const c = await client(t, port, 'h1');
  assert.deepEqual(await c.get({ ...req, object: receiving }), { kind: 'not-found', have: [0, 2, 5] });
  assert.deepEqual(await c.get(req), { kind: 'not-found' });
  assert.throws(() => parseNotFound({ id: 1, have: [0, -1] }), { code: 'ERR_DFTFS_PROTOCOL' });
  assert.throws(() => parseNotFound({ id: 1, have: 'all' }), { code: 'ERR_DFTFS_PROTOCOL' });
  assert.throws(() => parseNotFound({ id: 1, have: new Array(70_000).fill(0) }), { code: 'ERR_DFTFS_PROTOCOL' });
});

test('a server reads several requests of a connection at once and still answers them in order', async (t) => {
  let reading = 0;
  let most = 0;
  const s = new PeerServer({
    identity: { agent: 'srv', host: 'server-host' }, cluster: 'test',
    source: {
      async readChunk(r: GetRequest) {
        most = Math.max(most, ++reading);
        // The first asked is the slowest to read: in-order answers must wait for it.
        await new Promise((done) => setTimeout(done, r.offset === 0 ? 150 : 10));
        reading--;
        return CHUNK.subarray(r.offset, r.offset + r.length);
      },
    },
  });
  const port = await s.listen(0, '127.0.0.1');
  t.after(() => s.close());
  const c = await client(t, port, 'h1');
  const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => {
    const part = CHUNK.subarray(i * 1000, i * 1000 + 1000);
    return c.get({ object: OBJECT, offset: i * 1000, length: 1000, chunkDigest: digestBytes(part) });
  }));
  answers.forEach((a, i) => assert.ok(a.kind === 'data' && a.bytes.equals(CHUNK.subarray(i * 1000, i * 1000 + 1000)), `answer ${i} is its own range`));
  assert.ok(most > 1 && most <= 8, `reads overlapped, at most 8 at once (saw ${most})`);
});

test('one upload slot per (host, object): a second connection from the same host gets BUSY', async (t) => {
  const port = await server(t, { slowMs: 300 });
  const first = await client(t, port, 'same-host');
  const second = await client(t, port, 'same-host');
  const elsewhere = await client(t, port, 'other-host');
  const p1 = first.get(req);
  await new Promise((r) => setTimeout(r, 50));
  const [r2, r3] = await Promise.all([second.get(req), elsewhere.get(req)]);
  assert.equal((await p1).kind, 'data');
  assert.deepEqual(r2, { kind: 'busy' });
  assert.equal(r3.kind, 'data', 'another host has its own slot');
});

test('a malformed or oversize frame closes that connection only; the server keeps serving', async (t) => {
  const port = await server(t);
  for (const junk of [Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2]), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]) {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.on('error', () => undefined);
    sock.resume(); // read, so the server's close is seen
    sock.write(junk);
    await new Promise((r) => sock.once('close', r));
  }
  const c = await client(t, port, 'h1');
  assert.equal((await c.get(req)).kind, 'data');
});

test('with a cluster secret, a peer without it is refused, and a server without it is not trusted', async (t) => {
  const port = await server(t, { secret: 's3cret' });
  await assert.rejects(client(t, port, 'h1'), { code: 'ERR_DFTFS_AUTH' });
  await assert.rejects(client(t, port, 'h1', 'wrong'), { code: 'ERR_DFTFS_AUTH' });
  const ok = await client(t, port, 'h1', 's3cret');
  assert.equal((await ok.get(req)).kind, 'data');
  const open = await server(t);
  await assert.rejects(client(t, open, 'h1', 's3cret'), { code: 'ERR_DFTFS_AUTH', message: /could not prove/ });
});

/** A TCP relay to `port` that keeps every byte the server sent through it. */
async function recordingProxy(t: TestContext, port: number): Promise<{ port: number; seen: () => Buffer }> {
  const got: Buffer[] = [];
  const proxy = net.createServer((inbound) => {
    const out = net.connect(port, '127.0.0.1');
    inbound.pipe(out);
    out.on('data', (b: Buffer) => got.push(b));
    out.pipe(inbound);
    for (const s of [inbound, out]) s.on('error', () => { inbound.destroy(); out.destroy(); });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  t.after(() => proxy.close());
  return { port: (proxy.address() as net.AddressInfo).port, seen: () => Buffer.concat(got) };
}

test('with --tls the chunk bytes on the wire are encrypted; a peer with another secret fails the handshake', async (t) => {
  const probe = CHUNK.subarray(4096, 4096 + 64); // any 64 bytes of the chunk

  // Control: without TLS the chunk is visible on the wire, so the check below can fail.
  const plain = await recordingProxy(t, await server(t, { secret: 's3cret' }));
  const pc = await client(t, plain.port, 'h1', 's3cret');
  assert.deepEqual((await pc.get(req)).kind === 'data', true);
  assert.ok(plain.seen().includes(probe), 'plaintext chunk seen through the relay');

  const rejected: string[] = [];
  const key = tlsKey('s3cret');
  const tlsPort = await server(t, { secret: 's3cret', tlsKey: key, onReject: (r) => rejected.push(r) });
  const wire = await recordingProxy(t, tlsPort);
  const c = await client(t, wire.port, 'h1', 's3cret', key);
  const got = await c.get(req);
  assert.deepEqual(got.kind === 'data' && got.bytes, CHUNK);
  assert.ok(wire.seen().length > CHUNK.length, 'the chunk crossed the relay');
  assert.equal(wire.seen().includes(probe), false, 'no plaintext of the chunk on the wire');

  await assert.rejects(client(t, tlsPort, 'h2', 'other', tlsKey('other')), { code: 'ERR_DFTFS_AUTH', message: /TLS handshake/ });
  await assert.rejects(client(t, tlsPort, 'h2', 's3cret'), /did not answer|closed|ERR_DFTFS/, 'a plain-TCP client gets nothing');
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(rejected.some((r) => /TLS handshake failed/.test(r)), `the server saw the bad handshake: ${rejected.join('; ')}`);
  // The server still serves its good clients.
  assert.equal((await c.get({ ...req, offset: 1, length: 10 })).kind, 'data');
});
