import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { digestBytes } from '../../src/hash/index.js';
import { PeerClient, PeerServer, type GetRequest } from '../../src/net/index.js';
import { pseudoRandom } from '../helpers.js';

const CHUNK = pseudoRandom(1 << 20, 5);
const OBJECT = digestBytes(CHUNK);

async function server(t: TestContext, opts: { secret?: string; slowMs?: number } = {}) {
  const s = new PeerServer({
    identity: { agent: 'srv', host: 'server-host' },
    cluster: 'test',
    secret: opts.secret,
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

const client = async (t: TestContext, port: number, host: string, secret?: string) => {
  const c = await PeerClient.connect({ host: '127.0.0.1', port, cluster: 'test', identity: { agent: `a-${host}`, host }, secret });
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
