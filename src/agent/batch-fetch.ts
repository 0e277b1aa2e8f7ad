import { digestBytes } from '../hash/index.js';
import { createLogger } from '../log.js';
import type { PeerClient } from '../net/index.js';
import type { Digest } from '../hash/index.js';
import type { ObjectDesc } from './object-desc.js';
import type { PeerAddr } from './peer-addr.js';

const log = createLogger('fetch');

/**
 * Objects at most this big, and of one chunk, can be fetched in a batch: one request each, the
 * object verified and stored whole as it arrives (no partial file, no host lock, no per-object
 * bookkeeping). Bigger ones go through the chunked fetch.
 */
export const BATCH_OBJECT_MAX_BYTES = 256 * 1024;

/** Requests in flight on the batch's connection: enough to hide the round trip behind the bytes. */
export const BATCH_WINDOW = 64;

export const batchable = (d: ObjectDesc) => d.size > 0 && d.size <= BATCH_OBJECT_MAX_BYTES && d.chunks.length === 1;

/** Where a batch puts each verified object: the host store, or straight into a tree being written. */
export interface BatchSink {
  putVerified(bytes: Uint8Array, digest: Digest): Promise<unknown>;
}

export interface BatchEnv {
  store: BatchSink;
  connect(addr: PeerAddr): Promise<PeerClient>;
  report(kind: 'corrupt', addr: PeerAddr, object: string, detail: string): void;
  compress: boolean;
}

/**
 * Asks one holder for many small objects over one connection, BATCH_WINDOW in flight. Each answer
 * is checked against its object's digest before it is stored; `settled` is called once per object,
 * with true when it is in the store. Never throws: what the holder did not deliver (busy, not
 * found, bad bytes, connection lost) is settled false, for the caller to fetch another way.
 * With `waitMs`, the holder is another receiver of the same batch, and waits for what it has not
 * received yet (see Arrivals).
 */
export async function fetchBatch(env: BatchEnv, from: PeerAddr, descs: ObjectDesc[], settled: (d: ObjectDesc, stored: boolean) => void, waitMs?: number): Promise<void> {
  let client: PeerClient | undefined;
  try {
    client = await env.connect(from);
  } catch (err) {
    log.debug('batch source unreachable', from.agent, (err as Error).message);
  }
  let next = 0;
  let bad = false;
  const one = async (d: ObjectDesc): Promise<boolean> => {
    if (!client || bad) return false;
    const r = await client.get({ object: d.digest, offset: 0, length: d.size, chunkDigest: d.chunks[0]!.chunkDigest, compress: env.compress || undefined, ...(waitMs ? { waitMs } : {}) });
    if (r.kind !== 'data') return false;
    if (r.bytes.length !== d.size || digestBytes(r.bytes) !== d.digest) {
      // A holder that sends wrong bytes once is not asked for the rest of the batch.
      bad = true;
      env.report('corrupt', from, d.digest, `sent ${r.bytes.length} bytes that do not hash to the object`);
      return false;
    }
    await env.store.putVerified(r.bytes, d.digest);
    return true;
  };
  const lane = async () => {
    while (next < descs.length) {
      const d = descs[next++]!;
      settled(d, await one(d).catch((err: Error) => {
        log.debug('batch get failed', d.digest, err.message);
        return false;
      }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(BATCH_WINDOW, descs.length) }, lane));
}
