import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { concurrency } from '../concurrency.js';
import { isDftfsError } from '../errors.js';
import type { Digest } from '../hash/index.js';
import { createLogger } from '../log.js';
import { checkProof, newNonce, proof } from './auth.js';
import { corkForTick } from './cork.js';
import { encodeDataHeader, encodeFrame, FrameDecoder, type Frame } from './frame.js';
import { MAX_HELD_CHUNKS, parseGet, parseIdentity, type GetRequest, type ObjectName, type PeerIdentity } from './messages.js';
import type { RateLimiter } from './rate-limit.js';
import { serverTlsOptions } from './tls.js';

const log = createLogger('net');
const deflate = promisify(zlib.deflateRaw);

/** A client that has not finished its handshake by then is dropped. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** A slot whose connection asked nothing of the object for this long goes to the next asker. */
export const SLOT_IDLE_MS = 2_000;

/** Small GETs of one connection being read at once (answers still go out in order). */
export const SERVE_AHEAD = 8;
/**
 * Answers queued on a connection before the next waits for the socket to drain. The stream's own
 * mark (16 KiB) let four 4 KiB answers out per system call while a batch's requests had all
 * arrived (a holder serving 20,000 small files made ~5,000 writes); a big chunk still goes out
 * alone, and waits.
 */
const SEND_QUEUE_BYTES = 1024 * 1024;
/** Only requests up to this size are read ahead: 8 chunks of 4 MiB per connection would be a lot of memory. */
const READ_AHEAD_MAX_BYTES = 256 * 1024;

type Answer =
  | { type: 'BUSY' }
  | { type: 'NOT_FOUND'; have?: number[] }
  | { type: 'ERROR'; code: string; message: string }
  | { type: 'DATA'; size: number; payload: Buffer; release?: () => void };

/** What a peer server serves: verified bytes of a chunk it holds, or undefined. */
export interface ChunkSource {
  readChunk(req: GetRequest, signal: AbortSignal): Promise<Buffer | undefined>;
  /**
   * Told once the bytes `readChunk` gave are no longer read (written to the socket, or compressed):
   * a source may then reuse their buffer. Not called when an answer is dropped (the connection
   * closed first); the buffer is then left to the garbage collector.
   */
  releaseChunk?(bytes: Buffer): void;
  /** The chunks held of an object being received (listed in a NOT_FOUND), if it is. */
  heldChunks?(object: ObjectName): number[] | undefined;
}

export interface PeerServerOptions {
  source: ChunkSource;
  identity: PeerIdentity;
  cluster: string;
  secret?: string;
  /** Speak TLS with this pre-shared key (see tls.ts); plain TCP without. */
  tlsKey?: Buffer;
  limiter?: RateLimiter;
  /** Called for every served range (status and tests). */
  onServe?: (e: { peer: PeerIdentity; object: ObjectName; bytes: number }) => void;
  onReject?: (e: { remote: string; reason: string }) => void;
}

/**
 * The data-plane server of an agent. One upload slot per (requesting host, object): a second
 * connection from the same host asking for the same object is answered BUSY, so the host's other
 * agents wait for the first download and hardlink it. A malformed frame closes only its own
 * connection.
 */
export class PeerServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly slots = new Map<string, { conn: number; lastMs: number }>();
  private nextConn = 1;
  private closing: Promise<void> | undefined;
  port = 0;

  constructor(private readonly opts: PeerServerOptions) {
    if (opts.tlsKey) {
      this.server = tls.createServer({ ...serverTlsOptions(opts.tlsKey), handshakeTimeout: HANDSHAKE_TIMEOUT_MS }, (s) => this.accept(s));
      this.server.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
        this.opts.onReject?.({ remote: `${s.remoteAddress}:${s.remotePort}`, reason: `TLS handshake failed: ${err.message}` });
      });
    } else {
      this.server = net.createServer((s) => this.accept(s));
    }
    // Raw TCP sockets, so close() also ends connections still in their TLS handshake.
    this.server.on('connection', (raw: net.Socket) => {
      this.sockets.add(raw);
      raw.once('close', () => this.sockets.delete(raw));
    });
  }

  async listen(port = 0, host = '0.0.0.0'): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  private accept(socket: net.Socket): void {
    const conn = this.nextConn++;
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    const abort = new AbortController();
    const decoder = new FrameDecoder({ acceptsData: false }); // a server is sent no DATA
    const nonce = newNonce();
    let peer: PeerIdentity | undefined;
    let queue: Promise<void> = Promise.resolve();
    const reading = concurrency(SERVE_AHEAD);
    const held = new Set<string>();
    const drop = (reason: string) => {
      this.opts.onReject?.({ remote, reason });
      log.debug('dropping', remote, reason);
      socket.destroy();
    };
    const timer = setTimeout(() => drop('handshake timeout'), HANDSHAKE_TIMEOUT_MS);
    socket.on('close', () => {
      clearTimeout(timer);
      abort.abort();
      for (const k of held) if (this.slots.get(k)?.conn === conn) this.slots.delete(k);
    });
    socket.on('error', () => undefined);
    socket.write(encodeFrame({ type: 'CHALLENGE', body: { nonce, ...this.opts.identity, auth: Boolean(this.opts.secret) } }));

    socket.on('data', (bytes: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(bytes);
      } catch (err) {
        return drop((err as Error).message);
      }
      for (const f of frames) {
        if (!peer) {
          if (f.type !== 'HELLO') return drop(`expected HELLO, got ${f.type}`);
          try {
            const id = parseIdentity(f.body, 'HELLO');
            if (f.body.cluster !== this.opts.cluster) return drop(`wrong cluster ${JSON.stringify(f.body.cluster)}`);
            if (!checkProof(this.opts.secret, 'client', nonce, f.body.proof)) {
              socket.end(encodeFrame({ type: 'ERROR', body: { code: 'ERR_DFTFS_AUTH', message: 'authentication failed: wrong or missing cluster secret' } }));
              this.opts.onReject?.({ remote, reason: 'authentication failed' });
              return;
            }
            peer = id;
            clearTimeout(timer);
            const clientNonce = typeof f.body.nonce === 'string' ? f.body.nonce : '';
            socket.write(encodeFrame({ type: 'WELCOME', body: { proof: proof(this.opts.secret, 'server', clientNonce) } }));
          } catch (err) {
            return drop((err as Error).message);
          }
          continue;
        }
        if (f.type !== 'GET') return drop(`unexpected ${f.type} frame`);
        let req: GetRequest;
        try {
          req = parseGet(f.body);
        } catch (err) {
          return drop((err as Error).message);
        }
        // Small answers are read ahead, SERVE_AHEAD at once (a batch of small files is otherwise
        // one file read after another); big ones one at a time, in turn (memory). All are written
        // in the order asked.
        const ahead = req.length <= READ_AHEAD_MAX_BYTES ? reading(() => this.answer(conn, peer!, held, req, abort.signal)) : undefined;
        ahead?.catch(() => undefined); // handled in turn below; not an unhandled rejection meanwhile
        queue = queue.then(async () => this.send(socket, conn, peer!, req, await (ahead ?? this.answer(conn, peer!, held, req, abort.signal)))).catch((err) => {
          log.debug('serve failed', (err as Error).message);
          socket.destroy();
        });
      }
    });
  }

  /** What to answer a GET: BUSY, NOT_FOUND, ERROR, or the bytes (compressed if asked). */
  private async answer(conn: number, peer: PeerIdentity, held: Set<string>, req: GetRequest, signal: AbortSignal): Promise<Answer> {
    const slot = `${peer.host}\0${req.object}`;
    const owner = this.slots.get(slot);
    const now = performance.now();
    if (owner && owner.conn !== conn && now - owner.lastMs < SLOT_IDLE_MS) return { type: 'BUSY' };
    this.slots.set(slot, { conn, lastMs: now });
    held.add(slot);
    let bytes: Buffer | undefined;
    try {
      bytes = await this.opts.source.readChunk(req, signal);
    } catch (err) {
      return { type: 'ERROR', code: isDftfsError(err) ? err.code : 'ERR_DFTFS_IO', message: (err as Error).message };
    }
    if (!bytes) {
      const have = this.opts.source.heldChunks?.(req.object);
      return { type: 'NOT_FOUND', ...(have ? { have: have.slice(0, MAX_HELD_CHUNKS) } : {}) };
    }
    const source = this.opts.source;
    if (!req.compress) return { type: 'DATA', size: bytes.length, payload: bytes, release: () => source.releaseChunk?.(bytes) };
    const payload = await deflate(bytes, { level: 1 });
    source.releaseChunk?.(bytes);
    return { type: 'DATA', size: bytes.length, payload };
  }

  private async send(socket: net.Socket, conn: number, peer: PeerIdentity, req: GetRequest, a: Answer): Promise<void> {
    if (socket.destroyed) return;
    if (a.type === 'ERROR') {
      socket.write(encodeFrame({ type: 'ERROR', body: { id: req.id, code: a.code, message: a.message } }));
      return;
    }
    if (a.type === 'BUSY') {
      socket.write(encodeFrame({ type: 'BUSY', body: { id: req.id } }));
      return;
    }
    if (a.type === 'NOT_FOUND') {
      socket.write(encodeFrame({ type: 'NOT_FOUND', body: { id: req.id, ...(a.have ? { have: a.have } : {}) } }));
      return;
    }
    await this.opts.limiter?.take(a.payload.length);
    if (socket.destroyed) return;
    corkForTick(socket);
    socket.write(encodeDataHeader(req.id, a.payload.length));
    socket.write(a.payload, (err) => { if (!err) a.release?.(); });
    this.slots.set(`${peer.host}\0${req.object}`, { conn, lastMs: performance.now() });
    this.opts.onServe?.({ peer, object: req.object, bytes: a.size });
    if (socket.writableLength > SEND_QUEUE_BYTES) await drainedOrClosed(socket);
  }

  /** Stops accepting and closes every connection; idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const s of this.sockets) s.destroy();
      this.server.close(() => resolve());
    });
    return this.closing;
  }
}

/** Resolves when `socket` drains or closes, leaving no listener behind (a server waits so once per chunk). */
function drainedOrClosed(socket: net.Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
