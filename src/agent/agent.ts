import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Bus, startNatsServer, type NatsServerHandle } from '../bus/index.js';
import { storeDir } from '../config.js';
import { concurrency } from '../concurrency.js';
import { DftfsError, digestMismatch, usageError } from '../errors.js';
import { createHasher, digestBytes, isDigest, type Digest, type HashPool } from '../hash/index.js';
import { hashFile } from '../indexer/index.js';
import { createLogger } from '../log.js';
import { BufferPool, isStreamName, newDataFramePool, PeerClient, PeerServer, RateLimiter, tlsKey, type GetRequest, type ObjectName, type StreamName } from '../net/index.js';
import { ObjectStore, SYNC_IO_MAX_BYTES } from '../store/index.js';
import { MAX_CHUNK_BYTES, diffToc, encodeToc, tocPieces, type Toc, type TocChunk, type TocDelta, type TocEntry, type TocView } from '../toc/index.js';
import { Arrivals } from './arrivals.js';
import { batchable, fetchBatch, type BatchSink } from './batch-fetch.js';
import { FeedFollower, parseStreamOrder, streamDesc, type DigestFeed, type StreamOrder } from './bcast-stream.js';
import { ChunkCache } from './chunk-cache.js';
import { FETCH_STALL_MS, fillPartial, type FetchEnv, type FetchOptions, type FetchStats } from './fetcher.js';
import { HostLocks } from './host-lock.js';
import { descOf, parseDesc, type ObjectDesc } from './object-desc.js';
import { PartialObject } from './partial-object.js';
import { addrKey, parsePeerAddr, type PeerAddr } from './peer-addr.js';
import { StatusBoard } from './status-board.js';
import { parseHolders, shuffled, Tracker, type FoundHolder } from './tracker.js';

const log = createLogger('agent');

/** How long a `who` round collects answers; answers from a LAN come within a millisecond or two. */
const DISCOVERY_MAX_MS = 400;
const DISCOVERY_QUIET_MS = 40;
/**
 * Discovery stops this long after the first answer: one holder is enough to start, the answers
 * of one LAN arrive within it, and a fetch that runs out of sources asks again. Without it every
 * open of a small file waited the whole quiet window (40 ms: 5,000 files took minutes).
 */
const DISCOVERY_AFTER_FIRST_MS = 5;
/** A tracker answers from memory; one that takes longer than this is busy, and everyone is asked instead. */
const TRACKER_TIMEOUT_MS = 1000;
const LIST_AGENTS_MAX_MS = 1500;
const LIST_AGENTS_QUIET_MS = 400;
/** A TOC delta rides in the announcement (one NATS message, 1 MiB by default) only up to this size. */
const TOC_DELTA_MAX_BYTES = 256 * 1024;
/** Streams received, remembered by name (~100 bytes each) for hops still asking by name; a chain ends within seconds. */
const STREAMS_REMEMBERED = 1024;
/** How often a waiter checks whether another agent of its host has landed an object. */
const LOCAL_WAIT_POLL_MS = 50;

export interface AgentOptions {
  home: string;
  cluster: string;
  /** NATS URL; without one the agent starts its own nats-server on loopback. */
  nats?: string;
  /** Names the host (agents with the same host id share a store); default: the hostname. */
  hostId?: string;
  /** Address peers use to reach this agent; default: the first non-loopback IPv4, else 127.0.0.1. */
  advertise?: string;
  listen?: string;
  port?: number;
  secret?: string;
  /** The data plane speaks TLS keyed by the secret (which it then requires). */
  tls?: boolean;
  bwlimitBytesPerSec?: number;
  compress?: boolean;
  /** Sources fetched from in parallel per object. */
  jobs?: number;
  /** Role shown to peers; the publisher of a tree is the origin (asked last) and the cluster's tracker. */
  origin?: boolean;
  /** A fetch with no chunk arriving for this long fails (default FETCH_STALL_MS). */
  fetchStallMs?: number;
}

/**
 * A file served from where it lies, `root`/`entry.name`: an entry of a published tree (shared
 * with its TOC: a path and a descriptor per file of a 100,000-file tree were ~20 MB more), or
 * one file published alone.
 */
interface PublishedFile {
  root: string;
  entry: Pick<TocEntry, 'name' | 'size' | 'digest' | 'chunks'>;
}

/** Objects fetched at once by fetchMany outside its batch (bigger ones, and what the batch's holder did not deliver). */
const FETCH_MANY_JOBS = 8;

export interface BatchSummary {
  /** Distinct non-empty objects asked for. */
  objects: number;
  /** How many of them came over the network (the rest were in the host store already). */
  fetched: number;
  bytes: number;
  /** Bytes received from each agent. */
  bytesFrom: Record<string, number>;
}

export interface FetchResult {
  how: 'present' | 'host' | 'network';
  bytes: number;
  ms: number;
  bytesFrom: Record<string, number>;
  /** Bytes that came over the network: for a stream cut short because the host held the file, those that arrived before that was known. */
  received: number;
  retries: number;
  busy: number;
}

/** How a fetch ended, timed from `started` (performance.now()). */
function fetchResult(how: FetchResult['how'], bytes: number, started: number, stats?: FetchStats, received?: number): FetchResult {
  const bytesFrom = stats ? Object.fromEntries(stats.bytesFrom) : {};
  return {
    how, bytes, ms: performance.now() - started, bytesFrom, received: received ?? Object.values(bytesFrom).reduce((a, b) => a + b, 0),
    retries: stats?.retries ?? 0, busy: stats?.busy ?? 0,
  };
}

function defaultAdvertise(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** Cuts bytes held in memory (a TOC) into chunk descriptors. */
export function describeBytes(bytes: Uint8Array): ObjectDesc {
  const chunks: TocChunk[] = [];
  for (let off = 0; off < bytes.length; off += MAX_CHUNK_BYTES) {
    const part = bytes.subarray(off, Math.min(bytes.length, off + MAX_CHUNK_BYTES));
    chunks.push({ chunkOffset: off, chunkSize: part.length, chunkDigest: digestBytes(part) });
  }
  // One chunk is the whole: its digest is the file's.
  return { digest: chunks.length === 1 ? chunks[0]!.chunkDigest : digestBytes(bytes), size: bytes.length, chunks };
}

/**
 * The descriptor of a regular file, hashed in `pool`, for `Agent.publishFile`. `chunkBytes` sets
 * the chunk grid (at most MAX_CHUNK_BYTES); the digest is the file's whatever the grid.
 */
export async function hashFileForPublish(file: string, pool: HashPool, chunkBytes = MAX_CHUNK_BYTES): Promise<ObjectDesc> {
  const st = await fsp.stat(file).catch(() => undefined);
  if (!st) throw new DftfsError('ERR_DFTFS_NOT_FOUND', `${file}: no such file`);
  if (!st.isFile()) throw new DftfsError('ERR_DFTFS_NOT_FOUND', `${file}: not a regular file`);
  const { digest, chunks } = await hashFile(pool, path.resolve(file), st.size, chunkBytes);
  return { digest, size: st.size, chunks };
}

/**
 * A TOC of at most this many entries (~1 MB) is encoded whole and stored in one synchronous write
 * (see ObjectStore.putVerified): a make driver publishes one after nearly every job, and streaming
 * it through the thread pool cost each publication a chain of round trips behind other work.
 */
const SMALL_TOC_ENTRIES = 4096;

/** A tree version an agent published: its whole TOC, or the view it was made as from a delta; its TOC object once stored. */
interface PublishedTree {
  root: Digest;
  generation: number;
  toc?: Toc;
  view?: TocView;
  object?: Promise<ObjectDesc>;
}

const tocOf = (l: PublishedTree): Toc => l.toc ?? l.view!.toToc();

/** Serve buffers kept for reuse (see Agent.serveBuffers): up to 16 MiB idle with 4 MiB chunks. */
const SERVE_BUFFERS_KEPT = 4;

/** Outputs at most this big are adopted through memory: one read, hashed on the event loop (~0.2 ms). */
const ADOPT_IN_MEMORY_MAX_BYTES = 256 * 1024;

/** `length` bytes at `offset` of `file`, or undefined if the file is shorter. */
function readSync(file: string, offset: number, length: number): Buffer | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(length);
    return fs.readSync(fd, buf, 0, length, offset) === length ? buf : undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The whole file if it is at most `max` bytes (and did not grow while read), else undefined.
 * Synchronously (see SYNC_IO_MAX_BYTES): it is a local file, and small.
 */
function readIfSmall(file: string, max: number): Buffer | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const { size } = fs.fstatSync(fd);
    if (size > max) return undefined;
    // One byte more than its size: a file still growing is left to the copy path.
    const buf = Buffer.allocUnsafe(size + 1);
    const bytesRead = fs.readSync(fd, buf, 0, size + 1, 0);
    return bytesRead > size ? undefined : buf.subarray(0, bytesRead);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Stores bytes made in pieces (a TOC; see tocPieces) as one object and describes it: the store
 * hashes the whole as it writes, the chunks are hashed on the way; never held whole in memory.
 */
async function storePieces(store: ObjectStore, pieces: Iterable<Uint8Array>): Promise<ObjectDesc> {
  const chunks: TocChunk[] = [];
  let chunk = createHasher();
  let chunkStart = 0;
  let size = 0;
  const endChunk = () => {
    chunks.push({ chunkOffset: chunkStart, chunkSize: size - chunkStart, chunkDigest: chunk.digest() });
    chunk = createHasher();
    chunkStart = size;
  };
  async function* cut() {
    for (const piece of pieces) {
      for (let off = 0; off < piece.length;) {
        const take = Math.min(piece.length - off, MAX_CHUNK_BYTES - (size - chunkStart));
        chunk.update(piece.subarray(off, off + take));
        off += take;
        size += take;
        if (size - chunkStart === MAX_CHUNK_BYTES) endChunk();
      }
      yield piece;
    }
    if (size > chunkStart) endChunk();
  }
  const { digest } = await store.putStream(cut());
  return { digest, size, chunks };
}

/**
 * A dftfs agent: holds and serves objects for its host, fetches what it is asked for from the
 * nearest holders, and answers discovery on the control plane.
 */
export class Agent {
  readonly id: string;
  readonly hostId: string;
  addr!: PeerAddr;
  readonly store: ObjectStore;
  readonly locks: HostLocks;
  readonly status: StatusBoard;
  bus!: Bus;
  natsUrl!: string;
  private embedded: NatsServerHandle | undefined;
  private server!: PeerServer;
  private tlsKey: Buffer | undefined;
  private readonly published = new Map<Digest, PublishedFile>();
  private readonly served = new ChunkCache();
  /** Buffers the chunks this agent receives arrive in, reused from one chunk to the next (see BufferPool). */
  private readonly dataFrames = newDataFramePool();
  /**
   * Buffers the chunks this agent serves are read into, given back once written to the socket. A
   * chain hop of a bcast forwards every chunk it receives: a fresh buffer per chunk had V8 collect
   * ~20% of the hop's main-thread time (it collects by external memory allocated).
   */
  private readonly serveBuffers = new BufferPool(MAX_CHUNK_BYTES, SERVE_BUFFERS_KEPT);
  private readonly partials = new Map<ObjectName, PartialObject>();
  /** Batches this agent is receiving, served to receivers chained behind it (shareArrivals). */
  private readonly arrivals = new Set<Arrivals>();
  /**
   * Files this agent streams (a bcast still hashing them), by stream name, open for the agent's
   * life: an open, a read and a close per chunk were three trips to the thread pool.
   */
  private readonly streamsOut = new Map<StreamName, Promise<fsp.FileHandle>>();
  /** Streams received here, by name, to the digest they turned out to have (chain hops ask by name to the end). */
  private readonly streamDigests = new Map<StreamName, Digest>();
  private readonly inflight = new Map<Digest, Promise<FetchResult>>();
  private readonly descs = new Map<Digest, ObjectDesc>();
  private readonly clients = new Map<string, Promise<PeerClient>>();
  /** The tree version this agent published last (see publishTree). */
  private latestToc: PublishedTree | undefined;
  private closing: Promise<void> | undefined;

  private constructor(readonly opts: AgentOptions) {
    this.hostId = opts.hostId ?? os.hostname();
    this.id = `${this.hostId}/${process.pid}-${randomBytes(3).toString('hex')}`;
    this.store = new ObjectStore(storeDir(opts.home));
    fs.mkdirSync(this.store.root, { recursive: true });
    this.locks = new HostLocks(this.store.root);
    this.status = new StatusBoard(opts.home, this.id);
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    const a = new Agent(opts);
    try {
      await a.init();
    } catch (err) {
      await a.close();
      throw err;
    }
    return a;
  }

  private async init(): Promise<void> {
    await this.store.open();
    await this.store.sweepTemp();
    if (!this.opts.nats) {
      this.embedded = await startNatsServer();
      log.debug('embedded nats-server at', this.embedded.url);
    }
    this.natsUrl = this.opts.nats ?? this.embedded!.url;
    if (this.opts.tls && !this.opts.secret) throw usageError('--tls needs a cluster secret (--secret or DFTFS_SECRET): the TLS key is derived from it');
    this.tlsKey = this.opts.tls ? tlsKey(this.opts.secret!) : undefined;
    const limiter = this.opts.bwlimitBytesPerSec ? new RateLimiter(this.opts.bwlimitBytesPerSec) : undefined;
    this.server = new PeerServer({
      source: { readChunk: (req, signal) => this.readChunk(req, signal), releaseChunk: (b) => this.serveBuffers.give(b), heldChunks: (o) => this.partials.get(o)?.held() },
      identity: { agent: this.id, host: this.hostId },
      cluster: this.opts.cluster,
      secret: this.opts.secret,
      tlsKey: this.tlsKey,
      limiter,
      onServe: (e) => this.status.served(e.peer.agent, e.bytes),
      onReject: (e) => this.status.failure(`refused peer ${e.remote}: ${e.reason}`),
    });
    const port = await this.server.listen(this.opts.port ?? 0, this.opts.listen ?? '0.0.0.0');
    this.addr = { agent: this.id, host: this.hostId, ip: this.opts.advertise ?? defaultAdvertise(), port, origin: this.opts.origin, ...(this.tlsKey ? { tls: true } : {}) };
    this.bus = await Bus.connect({ url: this.natsUrl, cluster: this.opts.cluster, name: this.id });
    this.bus.subscribe(this.bus.subject('who'), (b, reply) => this.answerWho(b, reply));
    this.bus.subscribe(this.bus.subject('agents'), (_b, reply) => reply({ ...this.addr }));
    this.bus.subscribe(this.bus.subject('agent', this.id.replace(/[.*> ]/g, '_'), 'fetch'), async (b, reply) => {
      const upstream = Array.isArray(b.upstream) ? b.upstream.map(parsePeerAddr).filter((x): x is PeerAddr => x !== undefined) : [];
      const order = b.stream === undefined ? undefined : parseStreamOrder(b.stream);
      const desc = order ? undefined : parseDesc(b.desc);
      // Not awaited: the bus hands a subscription's messages over one at a time, and a second
      // order must not wait for the first one's transfer.
      const fetching = order ? this.fetchStream(order, upstream) : this.fetch(desc!, { upstream, descFromOrigin: true });
      void fetching.then((r) => reply({ ok: true, ...r, agent: this.id, host: this.hostId }), (err: DftfsError) => reply({ error: { code: err.code ?? 'ERR_DFTFS_IO', message: err.message } }));
    });
    this.bus.subscribe(this.bus.subject('report'), (b) => {
      if (b.agent === this.id) this.status.failure(`a peer reported bad data from us: ${String(b.detail)}`);
    });
    if (this.opts.origin) {
      const tracker = new Tracker(this.addr, (o) => {
        const desc = this.publishedDesc(o);
        if (desc) return { desc };
        return this.store.has(o) ? { desc: this.descs.get(o) } : undefined;
      });
      tracker.attach(this.bus);
      // Agents that started before this one: one round, in the background.
      void this.listAgents().then((all) => all.forEach((a) => tracker.agentSeen(a)), () => undefined);
    }
    this.bus.publish(this.bus.subject('hello'), this.addr);
    await this.bus.flush();
    this.status.start();
  }

  /** Chunk source of the peer server: verified bytes from the store, a partial, or a published file. */
  private async readChunk(req: GetRequest, signal: AbortSignal): Promise<Buffer | undefined> {
    const readFrom = async (fh: fsp.FileHandle) => {
      const buf = this.serveBuffers.take(req.length);
      const { bytesRead } = await fh.read(buf, 0, req.length, req.offset);
      if (bytesRead === req.length) return buf;
      this.serveBuffers.give(buf);
      return undefined;
    };
    const read = async (file: string) => {
      if (req.length <= SYNC_IO_MAX_BYTES) return readSync(file, req.offset, req.length);
      const fh = await fsp.open(file, 'r');
      try {
        return await readFrom(fh);
      } finally {
        await fh.close();
      }
    };
    const cached = this.served.get(req.chunkDigest);
    if (cached?.length === req.length) return cached;
    const verified = (buf: Buffer | undefined) => {
      if (!buf) return undefined;
      if (digestBytes(buf) !== req.chunkDigest) {
        this.serveBuffers.give(buf);
        return undefined;
      }
      this.served.put(req.chunkDigest, buf);
      return buf;
    };
    // A file being streamed (a bcast still hashing it): the origin reads it like a published file.
    const streamed = isStreamName(req.object) ? this.streamsOut.get(req.object) : undefined;
    if (streamed) return verified(await streamed.then(readFrom).catch(() => undefined));
    // A stream received here is asked for by its name to the end of the chain: it is in the store.
    const object = isStreamName(req.object) ? this.streamDigests.get(req.object) ?? req.object : req.object;
    // A published file first: the origin of a tree holds nearly everything that way, and looking in
    // the store first would cost it a stat per request.
    const pub = isDigest(object) ? this.published.get(object) : undefined;
    if (pub) {
      const file = path.join(pub.root, pub.entry.name);
      const buf = verified(await read(file).catch(() => undefined));
      if (buf) return buf;
      this.status.failure(`${file} changed since it was published; not served from there`);
    }
    if (isDigest(object) && this.store.has(object)) {
      const buf = await read(this.store.objectPath(object)).catch(() => undefined);
      if (verified(buf)) return buf;
      // The store object no longer matches its chunk: re-check it whole (quarantines it).
      await this.store.verify(object).catch(() => undefined);
    }
    const partial = this.partials.get(object);
    if (partial) {
      // A stream's chunk may be asked for before this hop has heard its digest: wait for the chunk,
      // then check the digest asked for is the one it was verified against.
      const i = partial.chunkAt(req.offset, req.length);
      // Only a chain's next hop asks with a wait: it asks for every chunk, some just after it lands.
      if (req.waitMs) partial.chainAsked();
      // A partial's chunks were verified as they arrived, in our own temp file: hashing them
      // again before forwarding would cost every chain hop a second pass over each byte.
      if (i >= 0 && (partial.has(i) || (req.waitMs && (await partial.waitFor(i, req.waitMs, signal, true)))) && partial.desc.chunks[i]!.chunkDigest === req.chunkDigest) {
        // Woken before the chunk is written only with its copy to take (PartialObject.waitFor).
        return partial.takeHandoff(i) ?? partial.read(i, req.length > SYNC_IO_MAX_BYTES ? this.serveBuffers.take(req.length) : undefined);
      }
    }
    // A batch being received here (a get's small files): a receiver chained behind it waits for them.
    for (const a of this.arrivals) {
      if (!isDigest(object) || !a.expects(object)) continue;
      const bytes = await a.take(object, req.waitMs ?? 0, signal);
      // Verified as it arrived, and held in memory since: a one-chunk object's chunk digest is its digest.
      if (bytes?.length === req.length && req.offset === 0 && req.chunkDigest === object) return bytes;
    }
    return undefined;
  }

  /** Serves a batch's objects as they arrive (see Arrivals), and those kept, until the agent closes. */
  shareArrivals(a: Arrivals): void {
    this.arrivals.add(a);
  }

  /**
   * Tells the tracker we are receiving `name` (a batch's, see batchName) and returns the latest
   * receiver of it before us on another host, to chain behind; none without a tracker.
   */
  async receiverAhead(name: Digest): Promise<PeerAddr | undefined> {
    const tracked = await this.bus.request(this.bus.subject('track'), { object: name, asker: this.addr }, TRACKER_TIMEOUT_MS).catch(() => undefined);
    const found = tracked && Array.isArray(tracked.holders) ? parseHolders(tracked.holders, this.id) : [];
    return found.find((h) => h.have === 'some' && h.addr.host !== this.hostId)?.addr;
  }

  private answerWho(b: Record<string, unknown>, reply: (body: unknown) => void): void {
    const object = b.object;
    if (isStreamName(object)) {
      // A stream: its origin, and whoever is receiving it (a chain hop whose upstream died asks).
      if (this.streamsOut.has(object)) return reply({ ...this.addr, have: 'all' });
      const partial = this.partials.get(object);
      if (partial) reply({ ...this.addr, have: partial.held() });
      return;
    }
    if (!isDigest(object)) return;
    const desc = this.descs.get(object) ?? this.publishedDesc(object);
    if (this.store.has(object) || this.published.has(object)) return reply({ ...this.addr, have: 'all', desc });
    const partial = this.partials.get(object);
    if (partial) return reply({ ...this.addr, have: partial.held(), desc: partial.desc });
  }

  /**
   * Who holds an object (and which chunks): the tracker's answer, one request and one reply. With
   * no tracker, or one that knows of no whole copy (another tracker's object), every agent is
   * asked (`who`).
   */
  async discover(object: ObjectName): Promise<FoundHolder[]> {
    if (isStreamName(object)) return this.askEveryone(object);
    const tracked = await this.bus.request(this.bus.subject('track'), { object, asker: this.addr }, TRACKER_TIMEOUT_MS).catch(() => undefined);
    const found = tracked && Array.isArray(tracked.holders) ? parseHolders(tracked.holders, this.id) : [];
    return found.some((h) => h.have === 'all') ? found : this.askEveryone(object);
  }

  /** Asks every agent of the cluster who holds an object; holders answer with what they have. */
  private async askEveryone(object: ObjectName): Promise<FoundHolder[]> {
    const answers = await this.bus.gather(this.bus.subject('who'), { object }, { maxWaitMs: DISCOVERY_MAX_MS, quietMs: DISCOVERY_QUIET_MS, afterFirstMs: DISCOVERY_AFTER_FIRST_MS });
    return parseHolders(answers, this.id);
  }

  /** Learns an object's descriptor from whoever holds it (for `get DIGEST`). */
  async describe(object: Digest): Promise<ObjectDesc> {
    const known = this.descs.get(object) ?? this.publishedDesc(object);
    if (known) return known;
    // Holders themselves, not the tracker: they know the descriptor of what they hold.
    for (const h of await this.askEveryone(object)) {
      if (h.desc && h.desc.digest === object) return h.desc;
    }
    throw new DftfsError('ERR_DFTFS_NOT_FOUND', `no agent of cluster ${this.opts.cluster} holds ${object}`);
  }

  private connect(addr: PeerAddr): Promise<PeerClient> {
    const key = addrKey(addr);
    let c = this.clients.get(key);
    if (!c) {
      c = Boolean(addr.tls) === Boolean(this.tlsKey)
        ? PeerClient.connect({ host: addr.ip, port: addr.port, cluster: this.opts.cluster, identity: { agent: this.id, host: this.hostId }, secret: this.opts.secret, tlsKey: this.tlsKey, dataFrames: this.dataFrames })
        : Promise.reject(new DftfsError('ERR_DFTFS_AUTH', `peer ${addr.agent} ${addr.tls ? 'requires TLS' : 'does not speak TLS'}; this agent ${this.tlsKey ? 'does' : 'does not'}`, {
          hint: 'start every agent of the cluster with --tls, or none' }));
      this.clients.set(key, c);
      const forget = () => { if (this.clients.get(key) === c) this.clients.delete(key); };
      c.then((client) => client.whenClosed().then(forget), forget);
    }
    return c;
  }

  /**
   * Makes the host store hold an object: already there; or another agent of this host is
   * fetching it (wait, then share it); or fetch it from the cluster.
   */
  fetch(desc: ObjectDesc, opts: FetchOptions = {}): Promise<FetchResult> {
    let p = this.inflight.get(desc.digest);
    if (!p) {
      p = this.doFetch(desc, opts).finally(() => this.inflight.delete(desc.digest));
      this.inflight.set(desc.digest, p);
    }
    return p;
  }

  private async doFetch(desc: ObjectDesc, opts: FetchOptions): Promise<FetchResult> {
    const started = performance.now();
    this.descs.set(desc.digest, desc);
    const result = (how: FetchResult['how'], stats?: FetchStats) => fetchResult(how, desc.size, started, stats);
    for (;;) {
      if (this.store.has(desc.digest)) return result('present');
      const mine = this.locks.tryAcquire({ pid: process.pid, agent: this.id, object: desc.digest, size: desc.size, startedMs: Date.now() });
      if (!mine) {
        // Another agent of this host is downloading it: wait for it to land, then share it.
        while (!this.store.has(desc.digest)) {
          const holder = this.locks.read(desc.digest);
          if (!holder) break;
          await new Promise((r) => setTimeout(r, LOCAL_WAIT_POLL_MS));
        }
        if (this.store.has(desc.digest)) return result('host');
        continue;
      }
      // Another agent of this host may have landed it between the check above and the lock.
      if (this.store.has(desc.digest)) {
        this.locks.release(desc.digest);
        return result('host');
      }
      const partial = await new PartialObject(this.store, desc, opts.descFromOrigin, desc.digest, this.serveBuffers).open();
      this.partials.set(desc.digest, partial);
      const transfer = this.status.beginTransfer(desc.digest, desc.size, () => partial.bytesReceived);
      try {
        const stats = await fillPartial(this.fetchEnv(), partial, opts);
        await partial.commit();
        this.bus.publish(this.bus.subject('have'), { ...this.addr, objects: [desc.digest] });
        transfer.done();
        return result('network', stats);
      } catch (err) {
        transfer.failed((err as Error).message);
        await partial.abort();
        throw err;
      } finally {
        this.partials.delete(desc.digest);
        this.locks.release(desc.digest);
      }
    }
  }

  private fetchEnv(): FetchEnv {
    return {
      self: this.addr,
      connect: (a) => this.connect(a),
      dropConnection: (a) => {
        const c = this.clients.get(addrKey(a));
        this.clients.delete(addrKey(a));
        void c?.then((x) => x.close(), () => undefined);
      },
      discover: (o) => this.discover(o),
      report: this.reportBad,
      compress: this.opts.compress ?? false,
      jobs: this.opts.jobs ?? 4,
      stallMs: this.opts.fetchStallMs ?? FETCH_STALL_MS,
    };
  }

  /**
   * Receives a streamed bcast (see bcast-stream.ts): chunks from `upstream` as their digests arrive
   * from the origin's feed, the object stored under its digest once the feed gives it. A host that
   * turns out to hold the object already stops the transfer there ('present').
   */
  private async fetchStream(order: StreamOrder, upstream: PeerAddr[]): Promise<FetchResult> {
    const started = performance.now();
    const desc = streamDesc(order);
    const feed = new FeedFollower(desc, (from, timeoutMs) => this.bus.request(this.feedSubject(order.name), { from }, timeoutMs));
    const partial = await new PartialObject(this.store, desc, true, order.name, this.serveBuffers).open();
    this.partials.set(order.name, partial);
    const transfer = this.status.beginTransfer(order.name, desc.size, () => partial.bytesReceived);
    const stop = new AbortController();
    feed.digest.then((d) => { if (this.store.has(d)) stop.abort(); }, (err: Error) => stop.abort(err));
    const result = (how: FetchResult['how'], stats?: FetchStats) => fetchResult(how, desc.size, started, stats);
    try {
      const stats = await fillPartial(this.fetchEnv(), partial, { upstream, descFromOrigin: true, arriving: feed, signal: stop.signal });
      const digest = await feed.digest;
      await partial.commit();
      this.rememberStream(order.name, digest);
      this.descs.set(digest, desc);
      this.bus.publish(this.bus.subject('have'), { ...this.addr, objects: [digest] });
      transfer.done();
      return result('network', stats);
    } catch (err) {
      // Stopped because the host holds the object already: hops below keep asking by name.
      const digest = await feed.digest.catch(() => undefined);
      const present = digest !== undefined && this.store.has(digest);
      if (present) this.rememberStream(order.name, digest);
      await partial.abort();
      if (present) {
        transfer.done();
        return fetchResult('present', desc.size, started, undefined, partial.bytesReceived);
      }
      transfer.failed((err as Error).message);
      throw err;
    } finally {
      this.partials.delete(order.name);
    }
  }

  /** Where a stream's origin answers for its digests (a stream name's hex: a subject token has no ':'). */
  private feedSubject(name: StreamName): string {
    return this.bus.subject('bcast', name.slice('bcast:'.length));
  }

  private rememberStream(name: StreamName, digest: Digest): void {
    this.streamDigests.set(name, digest);
    for (const old of this.streamDigests.keys()) {
      if (this.streamDigests.size <= STREAMS_REMEMBERED) break;
      this.streamDigests.delete(old);
    }
  }

  /**
   * Serves `file` under a stream name while `feed` delivers its digests to the receivers (the
   * origin of a streamed bcast), for the rest of this agent's life.
   */
  offerStream(file: string, name: StreamName, feed: DigestFeed): void {
    const opened = fsp.open(path.resolve(file), 'r');
    opened.catch(() => undefined); // a chunk read from it fails, and its asker is told NOT_FOUND
    this.streamsOut.set(name, opened);
    this.bus.subscribe(this.feedSubject(name), (b, reply) => {
      // Answered when there is something to say, without holding up the other receivers' requests.
      const from = b.from;
      if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0) return reply({ error: { code: 'ERR_DFTFS_PROTOCOL', message: 'digest feed: bad from' } });
      feed.answer(from).then(reply, (err: DftfsError) => reply({ error: { code: err.code, message: err.message } }));
    });
  }

  /**
   * Makes the host store hold many objects (a directory's small files, a tree). The small ones are
   * asked of the first hinted holder in one pipelined batch (see batch-fetch.ts); whatever it does
   * not deliver, and every bigger object, goes through fetch() (discovery, other sources), `jobs`
   * at a time. Objects another fetch is already bringing are waited for. Rejects with the first
   * failure once every object has been tried.
   */
  async fetchMany(descs: ObjectDesc[], opts: FetchOptions & { jobs?: number; onDone?: (d: ObjectDesc) => void } = {}): Promise<BatchSummary> {
    const summary: BatchSummary = { objects: 0, fetched: 0, bytes: 0, bytesFrom: {} };
    const source = (opts.hints ?? []).find((h) => addrKey(h) !== addrKey(this.addr));
    const limit = concurrency(opts.jobs ?? FETCH_MANY_JOBS);
    // In a random order: receivers of one tree that start together then begin on different
    // objects, and find each other's copies (or chain behind each other) as they reach them. In
    // the same order, all four workers of bench tree's mixed tree took every chunk from the origin
    // (610 MiB sent for 152 MiB: 13.8 s; shuffled, 332 MiB and 8.8 s, before chaining).
    const unique = new Map(shuffled(descs.filter((d) => d.size > 0)).map((d) => [d.digest, d]));
    const waits: Array<Promise<FetchResult>> = [];
    const small: ObjectDesc[] = [];
    const settle = new Map<Digest, (stored: boolean) => void>();
    for (const d of unique.values()) {
      summary.objects++;
      const running = this.inflight.get(d.digest);
      if (running) waits.push(running);
      else if (this.store.has(d.digest)) {
        opts.onDone?.(d);
        continue;
      }
      // In the batch only if no other agent of this host is fetching it (else fetch() waits for that one).
      else if (source && batchable(d) && this.locks.tryAcquire({ pid: process.pid, agent: this.id, object: d.digest, size: d.size, startedMs: Date.now() })) {
        small.push(d);
        this.descs.set(d.digest, d);
        const started = performance.now();
        const p = new Promise<boolean>((r) => settle.set(d.digest, r))
          .then((stored): Promise<FetchResult> | FetchResult => {
            this.locks.release(d.digest);
            return stored
              ? { how: 'network', bytes: d.size, ms: performance.now() - started, bytesFrom: { [source.agent]: d.size }, received: d.size, retries: 0, busy: 0 }
              : limit(() => this.doFetch(d, opts));
          })
          .finally(() => this.inflight.delete(d.digest));
        this.inflight.set(d.digest, p);
        waits.push(p);
      } else waits.push(limit(() => this.fetch(d, opts)));
      if (opts.onDone) void waits[waits.length - 1]!.then(() => opts.onDone!(d), () => undefined);
    }
    const stored: Digest[] = [];
    if (source && small.length) {
      await this.fetchBatchInto(this.store, source, small, (d, ok) => {
        if (ok) stored.push(d.digest);
        settle.get(d.digest)!(ok);
      });
      // One announcement for the batch, not one per object.
      if (stored.length) this.bus.publish(this.bus.subject('have'), { ...this.addr, objects: stored });
    }
    let first: Error | undefined;
    for (const r of await Promise.allSettled(waits)) {
      if (r.status === 'rejected') first ??= r.reason as Error;
      else if (r.value.how === 'network') {
        summary.fetched++;
        summary.bytes += r.value.bytes;
        for (const [agent, n] of Object.entries(r.value.bytesFrom)) summary.bytesFrom[agent] = (summary.bytesFrom[agent] ?? 0) + n;
      }
    }
    if (first) throw first;
    return summary;
  }

  /**
   * Asks one holder for many small objects (see fetchBatch), handing each verified object to
   * `sink` (the host store, or a tree being written). Never throws: `settled` tells what arrived.
   */
  fetchBatchInto(sink: BatchSink, from: PeerAddr, descs: ObjectDesc[], settled: (d: ObjectDesc, ok: boolean) => void, waitMs?: number): Promise<void> {
    return fetchBatch({ store: sink, connect: (a) => this.connect(a), compress: this.opts.compress ?? false, report: this.reportBad }, from, descs, settled, waitMs);
  }

  private readonly reportBad = (kind: 'corrupt' | 'failed', addr: PeerAddr, object: ObjectName, detail: string) => {
    this.status.failure(`${kind} from ${addr.agent} for ${object}: ${detail}`);
    if (kind === 'corrupt') this.bus.publish(this.bus.subject('report'), { agent: addr.agent, object, detail, by: this.id });
  };

  private publishedDesc(object: Digest): ObjectDesc | undefined {
    const pub = this.published.get(object);
    return pub && descOf(pub.entry);
  }

  /** The object being received, if this agent is receiving it now (its verified chunks are readable). */
  partial(digest: Digest): PartialObject | undefined {
    return this.partials.get(digest);
  }

  /**
   * Publishes one file (served from where it is, verified on every read) and returns its
   * descriptor once `hashed` (its hashing, already under way: `dftfs bcast` hashes while its agent
   * starts) gives it.
   */
  async publishFile(file: string, hashed: Promise<ObjectDesc>): Promise<ObjectDesc> {
    const desc = await hashed;
    const abs = path.resolve(file);
    this.published.set(desc.digest, { root: path.dirname(abs), entry: { name: path.basename(abs), ...desc } });
    return desc;
  }

  /**
   * Copies a file into the host store and serves it from there (a job's output: the file in the
   * mount's upper layer may change or be dropped later, the store copy cannot). A small file's
   * bytes come back too, as they were hashed.
   */
  async adopt(file: string, pool: HashPool): Promise<{ desc: ObjectDesc; bytes?: Buffer }> {
    // A small file (most of a build's outputs): its bytes in memory cannot change before they are
    // stored, and it costs an open, a stat, a read and a close instead of the copy, stat, hash
    // job and commit below (each a thread-pool round trip, 20-50 ms per job when a worker is busy).
    const small = readIfSmall(file, ADOPT_IN_MEMORY_MAX_BYTES);
    if (small) {
      const desc = describeBytes(small);
      if (desc.size > 0) await this.store.putVerified(small, desc.digest);
      this.descs.set(desc.digest, desc);
      return { desc, bytes: small };
    }
    // Copy first, then hash the copy in the pool: one pass of hashing, off the event loop, over
    // bytes that can no longer change before they are committed.
    const tmp = this.store.tempPath('adopt');
    try {
      await fsp.copyFile(file, tmp);
      const { size } = await fsp.stat(tmp);
      const { digest, chunks } = await hashFile(pool, tmp, size);
      if (size > 0) await this.store.commit(tmp, digest);
      const desc: ObjectDesc = { digest, size, chunks };
      this.descs.set(digest, desc);
      return { desc };
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  /** Stores bytes held in memory (a small TOC) and describes them. */
  private async storeSmall(bytes: Uint8Array): Promise<ObjectDesc> {
    const desc = describeBytes(bytes);
    await this.store.putVerified(bytes, desc.digest);
    return desc;
  }

  /**
   * Stores an object whose bytes came in a control message (a job's small output inside its
   * result) once they match its descriptor: size, every chunk digest and the whole digest.
   */
  async storeBytes(desc: ObjectDesc, bytes: Buffer): Promise<void> {
    const got = describeBytes(bytes);
    const same = got.size === desc.size && got.digest === desc.digest && got.chunks.length === desc.chunks.length &&
      got.chunks.every((c, i) => c.chunkDigest === desc.chunks[i]!.chunkDigest && c.chunkSize === desc.chunks[i]!.chunkSize);
    if (!same) throw digestMismatch('object', desc.digest, got.digest);
    if (desc.size > 0) await this.store.putVerified(bytes, desc.digest);
    this.descs.set(desc.digest, desc);
  }

  /**
   * Publishes a tree version: every file served in place, the TOC as an object of its own. The
   * announcement carries the delta from the previous version (followers holding that one apply
   * it) and, for a version that was indexed, the TOC object's digest. A version made from a delta
   * (a make driver publishes one per job whose outputs came home) stores its TOC only when asked
   * for it (`toc latest`: a follower that missed a version, a new mount, `get`): encoding, hashing
   * and storing the whole TOC for every job made each job's publication grow with the tree
   * (~70 ms and 6 MB of store per job in a tree of 20,000 files).
   */
  async publishTree(dir: string, next: { toc: Toc } | { view: TocView; delta: TocDelta }): Promise<{ digest?: Digest }> {
    const root = path.resolve(dir);
    const { root: treeRoot, generation } = 'toc' in next ? next.toc : next.view;
    for (const e of 'toc' in next ? next.toc.entries : next.delta.set) {
      if (e.type !== 'reg' || e.size === 0) continue;
      // Entries a re-index left unchanged are the same objects: nothing to replace.
      const had = this.published.get(e.digest!);
      if (had?.entry !== e || had.root !== root) this.published.set(e.digest!, { root, entry: e });
    }
    const prev = this.latestToc;
    let delta = 'delta' in next ? next.delta : prev && diffToc(tocOf(prev), next.toc);
    if (delta && JSON.stringify(delta).length > TOC_DELTA_MAX_BYTES) delta = undefined;
    const latest: PublishedTree = { root: treeRoot, generation, ...('toc' in next ? { toc: next.toc } : { view: next.view }) };
    // Followers with no delta to apply fetch the whole TOC: it is stored now.
    const desc = 'toc' in next || !delta ? await this.tocObject(latest) : undefined;
    this.latestToc = latest;
    // Only an agent that publishes a tree answers `toc latest`: with no answerer at all, NATS says
    // so at once ("no responders"), and a mount started before its driver comes up without
    // waiting out the request (it had waited 2 s for its own agent, which held no TOC).
    if (!prev) {
      this.bus.subscribe(this.bus.subject('toc', 'latest'), async (_b, reply) => {
        const l = this.latestToc!;
        const d = await this.tocObject(l);
        reply({ digest: d.digest, root: l.root, generation: l.generation, desc: d, origin: this.addr });
      });
    }
    this.bus.publish(this.bus.subject('toc'), { root: treeRoot, generation, origin: this.addr, ...(desc ? { digest: desc.digest, desc } : {}), ...(delta ? { delta } : {}) });
    // Answering before this returns: `serve` prints that it is up, and a `get` may ask at once.
    if (!prev) await this.bus.flush();
    return desc ? { digest: desc.digest } : {};
  }

  /** The TOC object of a published version, stored on first use. */
  private tocObject(l: PublishedTree): Promise<ObjectDesc> {
    l.object ??= (async () => {
      const toc = tocOf(l);
      const desc = toc.entries.length <= SMALL_TOC_ENTRIES ? await this.storeSmall(encodeToc(toc)) : await storePieces(this.store, tocPieces(toc));
      this.descs.set(desc.digest, desc);
      return desc;
    })();
    return l.object;
  }

  /** Every agent of the cluster that answers within the discovery window. */
  /**
   * Every agent that answers: wider than a `who` round, since leaving a slow agent out of
   * `bcast --all` is worse than a second's wait. `until` ends the wait early once the agents
   * asked for have answered (`bcast --to`).
   */
  async listAgents(until?: (agents: PeerAddr[]) => boolean): Promise<PeerAddr[]> {
    const parse = (answers: Array<Record<string, unknown>>) => answers.map(parsePeerAddr).filter((a): a is PeerAddr => a !== undefined);
    const answers = await this.bus.gather(this.bus.subject('agents'), {}, {
      maxWaitMs: LIST_AGENTS_MAX_MS,
      quietMs: LIST_AGENTS_QUIET_MS,
      ...(until ? { until: (a: Array<Record<string, unknown>>) => until(parse(a)) } : {}),
    });
    return parse(answers);
  }

  /** Shuts down in reverse order: stop serving, drain NATS, stop an embedded server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.status.stop();
      if (this.bus) this.bus.publish(this.bus.subject('bye'), this.addr);
      await this.server?.close();
      for (const c of this.clients.values()) void c.then((x) => x.close(), () => undefined);
      for (const p of this.partials.values()) await p.abort();
      for (const fh of this.streamsOut.values()) await fh.then((f) => f.close(), () => undefined);
      await this.bus?.close();
      await this.embedded?.stop();
    })();
    return this.closing;
  }
}
