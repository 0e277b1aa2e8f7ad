/** Bodies of the control frames, checked as they are decoded from untrusted peers. */
import { isDigest, type Digest } from '../hash/index.js';
import { protocolError } from './frame.js';

/**
 * An object is named on the wire by its digest or, while its origin is still hashing it (a
 * streamed bcast, agent/bcast-stream.ts), by a stream name: `bcast:` + 32 hex characters.
 */
export type StreamName = `bcast:${string}`;
export type ObjectName = Digest | StreamName;

const STREAM_NAME_RE = /^bcast:[0-9a-f]{32}$/;
export const isStreamName = (s: unknown): s is StreamName => typeof s === 'string' && STREAM_NAME_RE.test(s);
export const isObjectName = (s: unknown): s is ObjectName => isDigest(s) || isStreamName(s);

export interface GetRequest {
  id: number;
  /** The whole object the range belongs to. */
  object: ObjectName;
  offset: number;
  length: number;
  /** Digest of exactly these bytes; the server serves nothing else and the client checks it. */
  chunkDigest: Digest;
  /** How long the server may wait for a chunk it is itself still receiving (a pipelined chain). */
  waitMs?: number;
  /** Ask for the bytes deflated (`--compress`). */
  compress?: boolean;
}

const isUint = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

export function parseGet(b: Record<string, unknown>): GetRequest {
  if (!isUint(b.id) || b.id > 0xffffffff) throw protocolError('GET: bad id');
  if (!isObjectName(b.object) || !isDigest(b.chunkDigest)) throw protocolError('GET: bad digest');
  if (!isUint(b.offset) || !isUint(b.length) || b.length === 0 || b.length > 4 * 1024 * 1024) throw protocolError('GET: bad range');
  if (b.waitMs !== undefined && (!isUint(b.waitMs) || b.waitMs > 10 * 60_000)) throw protocolError('GET: bad waitMs');
  return {
    id: b.id, object: b.object, offset: b.offset, length: b.length, chunkDigest: b.chunkDigest,
    waitMs: b.waitMs as number | undefined, compress: b.compress === true,
  };
}

export interface PeerIdentity {
  agent: string;
  host: string;
}

export function parseIdentity(b: Record<string, unknown>, what: string): PeerIdentity {
  if (typeof b.agent !== 'string' || typeof b.host !== 'string' || b.agent.length > 256 || b.host.length > 256) {
    throw protocolError(`${what}: bad identity`);
  }
  return { agent: b.agent, host: b.host };
}

/** Chunk indices a NOT_FOUND may list: a 64 GiB object of 1 MiB chunks; the frame stays far below its maximum. */
export const MAX_HELD_CHUNKS = 65_536;

/**
 * The chunks a peer lists in its NOT_FOUND (it is receiving the object and has these), or
 * undefined when it lists none.
 */
export function parseNotFound(b: Record<string, unknown>): number[] | undefined {
  if (b.have === undefined) return undefined;
  if (!Array.isArray(b.have) || b.have.length > MAX_HELD_CHUNKS || !b.have.every(isUint)) throw protocolError('NOT_FOUND: bad chunk list');
  return b.have as number[];
}
