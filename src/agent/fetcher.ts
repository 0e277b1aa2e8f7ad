import { DftfsError, isDftfsError } from '../errors.js';
import { createLogger } from '../log.js';
import type { ObjectName, PeerClient } from '../net/index.js';
import type { ArrivingDigests } from './bcast-stream.js';
import type { ObjectDesc } from './object-desc.js';
import type { PartialObject } from './partial-object.js';
import { addrKey, type PeerAddr } from './peer-addr.js';

const log = createLogger('fetch');

/** Chunks in flight per source connection: enough to keep a link busy across one round trip. */
export const PIPELINE_DEPTH = 3;
/** A transfer that makes no progress for this long fails (EIO for a mount) instead of hanging. */
export const FETCH_STALL_MS = 30_000;
/** Discovery rounds that find only sources that sent bad bytes (or refused us) before a fetch gives up. */
const FRUITLESS_ROUNDS = 3;
/** A source that answered BUSY is left alone this long. */
const BUSY_BACKOFF_MS = 250;
/** How long a chain receiver lets its upstream wait for a chunk the upstream is still receiving. */
export const CHAIN_WAIT_MS = 20_000;

/**
 * Objects at most this big are fetched straight from a hinted holder (the TOC's origin), without
 * asking the cluster first: for a small file the discovery round trip (≥ 5 ms) costs more than
 * the bytes, and a mount opening thousands of them would pay it for each.
 */
export const DIRECT_FETCH_MAX_BYTES = 256 * 1024;

export interface FetchOptions {
  /** A bcast chain: ask these, in order, and wait for them (later ones only when earlier ones die). */
  upstream?: PeerAddr[];
  /** Agents known to hold the whole object (the TOC's origin): used when nobody nearer answers. */
  hints?: PeerAddr[];
  /** Start with the hints whatever the size, asking the cluster only if they fail (a job's outputs, from the worker that wrote them). */
  hintsFirst?: boolean;
  /**
   * The descriptor is the origin's own (a TOC entry; a bcast order): its chunk digests were computed
   * from the same bytes as its digest, so the verified chunks are the file and the whole-file digest
   * is not computed again. Left unset for a descriptor a peer supplied (`get DIGEST`, a job's outputs).
   */
  descFromOrigin?: boolean;
  /** A streamed bcast: chunk digests still arriving; a chunk is asked for only once its digest is known. */
  arriving?: ArrivingDigests;
  /** Stops the fetch (it rejects with the signal's reason). */
  signal?: AbortSignal;
}

export interface Holder {
  addr: PeerAddr;
  /**
   * Chunk indices it holds; 'all'; or 'some' (it is receiving the object: which chunks is learnt
   * from its first NOT_FOUND, which lists them).
   */
  have: 'all' | 'some' | Set<number>;
}

export interface FetchEnv {
  self: PeerAddr;
  connect(addr: PeerAddr): Promise<PeerClient>;
  dropConnection(addr: PeerAddr): void;
  discover(object: ObjectName): Promise<Holder[]>;
  report(kind: 'corrupt' | 'failed', addr: PeerAddr, object: ObjectName, detail: string): void;
  compress: boolean;
  jobs: number;
  /** Fail after this long without a chunk arriving. */
  stallMs: number;
}

/**
 * The receiver to chain behind, if nobody but the origin holds the object whole: the latest agent
 * that asked the tracker for it before us (the tracker names receivers latest first), on another
 * host. Receivers that start together (a tree's `get` on every worker, a wave of jobs sharing an
 * input) then form a chain behind the origin, as a bcast's receivers do, instead of each asking
 * the origin for every chunk at the same moment: the origin's link carries the object once. The
 * chain's order is the order of the questions, so it has no cycle; a dead or stalled upstream is
 * left for the other sources, the origin last.
 */
function chainUpstream(holders: Holder[], self: PeerAddr): Holder | undefined {
  if (holders.some((h) => h.have !== 'some' && !h.addr.origin)) return undefined;
  return holders.find((h) => h.have === 'some' && h.addr.host !== self.host);
}

export interface FetchStats {
  bytesFrom: Map<string, number>;
  retries: number;
  /** BUSY answers: a publisher's slot for this host and object was taken. */
  busy: number;
}

/**
 * Fills a partial object from the cluster. Per missing chunk it picks, in order: an explicit
 * upstream (a bcast chain), then a random holder on another host, then the origin. BUSY, a
 * refusal, a bad digest, a stall or a dead peer moves the chunk to the next source; when no
 * source is left it re-discovers with backoff, and gives up after FETCH_STALL_MS without progress.
 */
export async function fillPartial(env: FetchEnv, partial: PartialObject, opts: FetchOptions = {}): Promise<FetchStats> {
  const desc: ObjectDesc = partial.desc;
  const name = partial.name;
  const stats: FetchStats = { bytesFrom: new Map(), retries: 0, busy: 0 };
  let upstream = opts.upstream ?? [];
  const hints = (opts.hints ?? []).filter((h) => addrKey(h) !== addrKey(env.self));
  let holders: Holder[] = [...upstream, ...hints].map((addr) => ({ addr, have: 'all' as const }));
  let upstreamKeys = new Set(upstream.map(addrKey));
  /** Sources that failed (dead, stalled): skipped until the next discovery round. */
  const banned = new Set<string>();
  /** Sources that sent bytes not matching their digest, or refused us: never asked again for this object. */
  const corrupt = new Set<string>();
  let lastPermanent: Error | undefined;
  const busyUntil = new Map<string, number>();
  const inflight = new Map<string, number>();
  const pendingChunks = new Set<number>();
  let lastProgress = performance.now();
  let discovering: Promise<void> | undefined;
  let backoffMs = 100;
  let fruitless = 0;

  const rediscover = () => {
    discovering ??= env.discover(name).then((found) => {
      const byKey = new Map(holders.map((h) => [addrKey(h.addr), h]));
      // An upstream keeps 'all': it waits for chunks it is still receiving (a chain), so what
      // it announced so far does not limit what we may ask it.
      for (const h of found) if (addrKey(h.addr) !== addrKey(env.self) && !upstreamKeys.has(addrKey(h.addr))) byKey.set(addrKey(h.addr), h);
      holders = [...byKey.values()];
    }).finally(() => { discovering = undefined; });
    return discovering;
  };

  const isUpstream = (h: Holder) => upstreamKeys.has(addrKey(h.addr));
  const mayHave = (h: Holder, i: number) => h.have === 'all' || h.have === 'some' || h.have.has(i);
  const choose = (i: number): Holder | undefined => {
    const now = performance.now();
    const usable = holders.filter((h) => !banned.has(addrKey(h.addr)) && !corrupt.has(addrKey(h.addr)) && (busyUntil.get(addrKey(h.addr)) ?? 0) <= now &&
      (inflight.get(addrKey(h.addr)) ?? 0) < PIPELINE_DEPTH && mayHave(h, i));
    // A chain: the first live upstream that can have chunk i is the only source, even when its
    // pipeline is full (then wait). Later upstreams (the origin) are fallbacks for a dead one,
    // never extra bandwidth: else the origin would feed every receiver and the chain is a star.
    for (const u of upstream) {
      const h = holders.find((x) => addrKey(x.addr) === addrKey(u));
      if (!h || banned.has(addrKey(h.addr)) || corrupt.has(addrKey(h.addr))) continue;
      if (!mayHave(h, i)) continue;
      return usable.includes(h) ? h : undefined;
    }
    // Peers known to hold the chunk, then peers receiving the object, then the origin; other hosts first.
    const peers = usable.filter((h) => !h.addr.origin);
    const known = peers.filter((h) => h.have !== 'some');
    const otherHost = (list: Holder[]) => {
      const other = list.filter((h) => h.addr.host !== env.self.host);
      return other.length ? other : list;
    };
    const pool = known.length ? otherHost(known) : peers.length ? otherHost(peers) : usable;
    return pool[Math.floor(Math.random() * pool.length)];
  };

  // A chain's upstream is its only source while it lives: nobody else need be asked before then.
  if (!upstream.length && !(hints.length && (desc.size <= DIRECT_FETCH_MAX_BYTES || opts.hintsFirst))) {
    await rediscover();
    const receiver = chainUpstream(holders, env.self);
    if (receiver) {
      upstream = [receiver.addr];
      upstreamKeys = new Set([addrKey(receiver.addr)]);
      receiver.have = 'all';
      log.debug('chained behind', addrKey(receiver.addr), name);
    }
  }
  return new Promise<FetchStats>((resolve, reject) => {
    let finished = false;
    const finish = (err?: Error) => {
      if (finished) return;
      finished = true;
      clearInterval(watchdog);
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(stats);
    };
    const watchdog = setInterval(() => {
      if (performance.now() - lastProgress > env.stallMs) {
        finish(new DftfsError('ERR_DFTFS_UNAVAILABLE', `no source delivered any chunk of ${name} for ${env.stallMs / 1000} s`, {
          hint: 'is a publisher of the file still running and reachable?',
        }));
      } else pump();
    }, 200);

    const fetchChunk = async (i: number, h: Holder) => {
      const key = addrKey(h.addr);
      const c = desc.chunks[i]!;
      inflight.set(key, (inflight.get(key) ?? 0) + 1);
      pendingChunks.add(i);
      try {
        const client = await env.connect(h.addr);
        const res = await client.get({
          object: name, offset: c.chunkOffset, length: c.chunkSize, chunkDigest: c.chunkDigest,
          waitMs: isUpstream(h) ? CHAIN_WAIT_MS : 0, compress: env.compress,
        });
        if (res.kind === 'busy') {
          busyUntil.set(key, performance.now() + BUSY_BACKOFF_MS);
          stats.retries++;
          stats.busy++;
        } else if (res.kind === 'not-found') {
          // A peer receiving the object says which chunks it has; from others, just not this one.
          if (res.have) h.have = new Set(res.have.filter((n) => n !== i));
          else if (h.have instanceof Set) h.have.delete(i);
          else h.have = new Set();
          stats.retries++;
        } else {
          try {
            await partial.write(i, res.bytes);
          } catch (err) {
            res.release();
            if (!isDftfsError(err, 'ERR_DFTFS_DIGEST_MISMATCH')) throw err;
            corrupt.add(key);
            lastPermanent = err;
            stats.retries++;
            env.report('corrupt', h.addr, name, `chunk ${i}: ${err.message}`);
            log.debug('corrupt chunk from', key, String(i));
            return;
          }
          stats.bytesFrom.set(h.addr.agent, (stats.bytesFrom.get(h.addr.agent) ?? 0) + res.bytes.length);
          res.release(); // written: the frame's buffer may carry the next chunk
          lastProgress = performance.now();
          backoffMs = 100;
        }
      } catch (err) {
        if (isDftfsError(err, 'ERR_DFTFS_AUTH')) {
          corrupt.add(key);
          lastPermanent = err;
        } else banned.add(key);
        stats.retries++;
        env.dropConnection(h.addr);
        env.report('failed', h.addr, name, (err as Error).message);
        log.debug('source failed', key, (err as Error).message);
      } finally {
        inflight.set(key, (inflight.get(key) ?? 1) - 1);
        pendingChunks.delete(i);
        pump();
      }
    };

    const pipelinesFull = () => holders.every((h) => banned.has(addrKey(h.addr)) || corrupt.has(addrKey(h.addr)) || (inflight.get(addrKey(h.addr)) ?? 0) >= PIPELINE_DEPTH);

    const pump = () => {
      if (finished) return;
      if (partial.complete) return finish();
      let starved = false;
      for (const i of partial.missing()) {
        if (pendingChunks.has(i) || (opts.arriving && !opts.arriving.known(i))) continue;
        if (pendingChunks.size >= env.jobs * PIPELINE_DEPTH) break;
        const h = choose(i);
        if (!h) {
          starved = true;
          // Every source's pipeline is full (a chain's upstream, mostly): no later chunk finds one
          // either. Looking through all of them after each chunk cost a receiver of a 200-chunk
          // bcast ~15% of its main thread.
          if (pipelinesFull()) break;
          continue;
        }
        void fetchChunk(i, h);
      }
      if (starved && pendingChunks.size === 0 && !discovering) {
        // Nobody to ask right now: look again after a backoff (sources appear as the swarm grows).
        const wait = backoffMs;
        backoffMs = Math.min(backoffMs * 2, 2000);
        setTimeout(() => {
          banned.clear();
          void rediscover().then(() => {
            // Everyone who has it sent bad data or refused us, in several rounds (one round under
            // load may hear from nobody else): waiting will not help.
            if (lastPermanent && holders.length > 0 && holders.every((h) => corrupt.has(addrKey(h.addr)))) {
              if (++fruitless >= FRUITLESS_ROUNDS) return finish(lastPermanent);
            } else fruitless = 0;
            pump();
          }, pump);
        }, wait);
      }
    };
    const onAbort = () => finish(opts.signal!.reason instanceof Error ? opts.signal!.reason : new DftfsError('ERR_DFTFS_UNAVAILABLE', `fetch of ${name} stopped`));
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort);
    opts.arriving?.onMore(pump);
    pump();
  });
}
