import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { DftfsError } from '../errors.js';
import { checkProof, newNonce, proof } from './auth.js';
import { BufferPool } from './buffer-pool.js';
import { corkForTick } from './cork.js';
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES, type Frame } from './frame.js';
import { parseIdentity, parseNotFound, type GetRequest, type PeerIdentity } from './messages.js';
import { clientTlsOptions } from './tls.js';

const inflate = promisify(zlib.inflateRaw);

/** A peer that sends nothing for this long while a request is outstanding is stalled. */
export const PEER_STALL_MS = 15_000;
export const CONNECT_TIMEOUT_MS = 5_000;

/** Socket reads of a plain TCP connection go into one buffer of this size, reused. */
const READ_BUFFER_BYTES = 64 * 1024;

/** DATA frames of this size or more (chunks) are assembled in the `dataFrames` pool when given one. */
const POOLED_FROM_BYTES = 1024 * 1024;

/** A pool for PeerClientOptions.dataFrames: eight cover a transfer's chunks in flight (PIPELINE_DEPTH per source) and those being assembled. */
export const newDataFramePool = () => new BufferPool(MAX_FRAME_BYTES, 8);

export type GetResult =
  /**
   * `release`: the caller is done with `bytes` (stored or refused) and nothing holds them any
   * more; their buffer may be reused for another frame. Not calling it only costs an allocation.
   */
  | { kind: 'data'; bytes: Buffer; release: () => void }
  | { kind: 'busy' }
  /** `have`: the chunks the peer holds of an object it is still receiving. */
  | { kind: 'not-found'; have?: number[] };

interface Pending {
  req: GetRequest;
  resolve: (r: GetResult) => void;
  reject: (e: Error) => void;
}

export interface PeerClientOptions {
  host: string;
  port: number;
  cluster: string;
  identity: PeerIdentity;
  secret?: string;
  /** Speak TLS with this pre-shared key (the peer must too). */
  tlsKey?: Buffer;
  /**
   * Chunk-sized DATA frames are assembled in buffers of this pool (shared by an agent's
   * connections), which the receiver gives back through `release` once the bytes are stored.
   */
  dataFrames?: BufferPool;
}

/**
 * One connection to a peer's data plane. Requests are pipelined (several in flight) and answered
 * in order. The bytes returned are NOT yet verified: the caller checks them against the chunk
 * digest before anyone can read them.
 */
export class PeerClient {
  peer: PeerIdentity | undefined;
  private socket: net.Socket | undefined;
  private readonly pending: Pending[] = [];
  private nextId = 1;
  private lastActivity = performance.now();
  private stallTimer: NodeJS.Timeout | undefined;
  private failure: Error | undefined;
  private onClosed!: (err: Error) => void;
  private readonly closedP = new Promise<Error>((r) => { this.onClosed = r; });

  private constructor(private readonly opts: PeerClientOptions) {}

  /** Resolves (never rejects) with the reason once the connection is gone. */
  whenClosed(): Promise<Error> {
    return this.closedP;
  }

  static async connect(opts: PeerClientOptions): Promise<PeerClient> {
    const c = new PeerClient(opts);
    await c.handshake();
    return c;
  }

  private handshake(): Promise<void> {
    return new Promise((resolve, reject) => {
      const { host, port, tlsKey } = this.opts;
      // Plain TCP reads into one reused buffer (`onread`: no allocation per read); the decoder
      // copies out what it keeps. TLS sockets do not take `onread`.
      const onread = { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: (n: number, buf: Uint8Array) => { onBytes(Buffer.from(buf.buffer, buf.byteOffset, n)); return true; } };
      const socket = tlsKey ? tls.connect({ host, port, ...clientTlsOptions(tlsKey) }) : net.connect({ host, port, onread });
      this.socket = socket;
      socket.setNoDelay(true);
      const pool = this.opts.dataFrames;
      const dataBuffer = (length: number) => (pool && length >= POOLED_FROM_BYTES ? pool.take(length) : Buffer.allocUnsafe(length));
      const decoder = new FrameDecoder({ transient: !tlsKey, dataBuffer });
      const clientNonce = newNonce();
      let state: 'challenge' | 'welcome' | 'ready' = 'challenge';
      let serverNonce = '';
      const timer = setTimeout(() => fail(new DftfsError('ERR_DFTFS_TIMEOUT', `peer ${this.opts.host}:${this.opts.port} did not answer the handshake`)), CONNECT_TIMEOUT_MS);
      const fail = (err: Error) => {
        clearTimeout(timer);
        this.fail(err);
        if (state !== 'ready') {
          socket.destroy();
          reject(err);
        }
      };
      socket.on('error', (err: NodeJS.ErrnoException & { reason?: string }) => fail(err.code?.startsWith('ERR_SSL')
        ? new DftfsError('ERR_DFTFS_AUTH', `TLS handshake with peer ${host}:${port} failed: ${err.reason ?? err.message}`, {
          hint: 'every agent of the cluster needs --tls and the same --secret', cause: err })
        : new DftfsError('ERR_DFTFS_UNAVAILABLE', `peer ${host}:${port}: ${err.message}`, { cause: err })));
      socket.on('close', () => fail(new DftfsError('ERR_DFTFS_UNAVAILABLE', `peer ${this.opts.host}:${this.opts.port} closed the connection`)));
      const onBytes = (bytes: Buffer) => {
        this.lastActivity = performance.now();
        let frames: Frame[];
        try {
          frames = decoder.push(bytes);
        } catch (err) {
          socket.destroy();
          return fail(err as Error);
        }
        for (const f of frames) {
          if (f.type === 'ERROR' && f.body.id === undefined) {
            const code = f.body.code === 'ERR_DFTFS_AUTH' ? 'ERR_DFTFS_AUTH' : 'ERR_DFTFS_PROTOCOL';
            socket.destroy();
            return fail(new DftfsError(code, `peer ${this.opts.host}:${this.opts.port}: ${String(f.body.message)}`, {
              hint: code === 'ERR_DFTFS_AUTH' ? 'give every agent of the cluster the same --secret (or DFTFS_SECRET)' : undefined,
            }));
          }
          if (state === 'challenge') {
            if (f.type !== 'CHALLENGE' || typeof f.body.nonce !== 'string') return fail(new DftfsError('ERR_DFTFS_PROTOCOL', 'expected CHALLENGE'));
            serverNonce = f.body.nonce;
            try {
              this.peer = parseIdentity(f.body, 'CHALLENGE');
            } catch (err) {
              return fail(err as Error);
            }
            socket.write(encodeFrame({ type: 'HELLO', body: { cluster: this.opts.cluster, ...this.opts.identity, nonce: clientNonce, proof: proof(this.opts.secret, 'client', serverNonce) } }));
            state = 'welcome';
          } else if (state === 'welcome') {
            if (f.type !== 'WELCOME') return fail(new DftfsError('ERR_DFTFS_PROTOCOL', `expected WELCOME, got ${f.type}`));
            if (!checkProof(this.opts.secret, 'server', clientNonce, f.body.proof)) {
              socket.destroy();
              return fail(new DftfsError('ERR_DFTFS_AUTH', `peer ${this.opts.host}:${this.opts.port} could not prove it knows the cluster secret`));
            }
            state = 'ready';
            clearTimeout(timer);
            this.stallTimer = setInterval(() => this.checkStall(), 1000);
            this.stallTimer.unref();
            resolve();
          } else {
            void this.onFrame(f);
          }
        }
      };
      if (tlsKey) socket.on('data', onBytes);
    });
  }

  private checkStall(): void {
    const head = this.pending[0];
    if (!head) return;
    const allowed = PEER_STALL_MS + (head.req.waitMs ?? 0);
    if (performance.now() - this.lastActivity > allowed) {
      this.socket?.destroy();
      this.fail(new DftfsError('ERR_DFTFS_TIMEOUT', `peer ${this.describe()} stalled: nothing for ${Math.round(allowed / 1000)} s`));
    }
  }

  describe(): string {
    return `${this.peer?.agent ?? '?'} (${this.opts.host}:${this.opts.port})`;
  }

  private async onFrame(f: Frame): Promise<void> {
    const head = this.pending.shift();
    if (!head) {
      this.socket?.destroy();
      return this.fail(new DftfsError('ERR_DFTFS_PROTOCOL', `unsolicited ${f.type} frame from ${this.describe()}`));
    }
    this.lastActivity = performance.now();
    const id = f.type === 'DATA' ? f.requestId : f.body.id;
    if (id !== head.req.id) {
      this.socket?.destroy();
      head.reject(new DftfsError('ERR_DFTFS_PROTOCOL', `answer for request ${String(id)} while ${head.req.id} was next`));
      return this.fail(new DftfsError('ERR_DFTFS_PROTOCOL', 'out-of-order answer'));
    }
    if (f.type === 'DATA') {
      const release = () => this.opts.dataFrames?.give(f.bytes);
      if (!head.req.compress) return head.resolve({ kind: 'data', bytes: f.bytes, release });
      try {
        head.resolve({ kind: 'data', bytes: await inflate(f.bytes), release: () => undefined });
      } catch (err) {
        head.reject(new DftfsError('ERR_DFTFS_PROTOCOL', `bad compressed data from ${this.describe()}`, { cause: err }));
      } finally {
        release();
      }
    } else if (f.type === 'BUSY') head.resolve({ kind: 'busy' });
    else if (f.type === 'NOT_FOUND') {
      let have: number[] | undefined;
      try {
        have = parseNotFound(f.body);
      } catch (err) {
        this.socket?.destroy();
        head.reject(err as Error);
        return this.fail(err as Error);
      }
      head.resolve({ kind: 'not-found', ...(have ? { have } : {}) });
    }
    else if (f.type === 'ERROR') head.reject(new DftfsError('ERR_DFTFS_UNAVAILABLE', `peer ${this.describe()}: ${String(f.body.message)}`));
    else head.reject(new DftfsError('ERR_DFTFS_PROTOCOL', `unexpected ${f.type} from ${this.describe()}`));
  }

  /** Asks for a range. Rejects if the connection fails or stalls. */
  get(req: Omit<GetRequest, 'id'>): Promise<GetResult> {
    if (this.failure) return Promise.reject(this.failure);
    const full: GetRequest = { ...req, id: this.nextId++ };
    if (this.nextId > 0xffffffff) this.nextId = 1;
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) this.lastActivity = performance.now();
      this.pending.push({ req: full, resolve, reject });
      corkForTick(this.socket!);
      this.socket!.write(encodeFrame({ type: 'GET', body: { ...full } }));
    });
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.onClosed(err);
    clearInterval(this.stallTimer);
    for (const p of this.pending.splice(0)) p.reject(err);
  }

  close(): void {
    this.fail(new DftfsError('ERR_DFTFS_CLOSED', 'connection closed'));
    this.socket?.destroy();
  }
}
