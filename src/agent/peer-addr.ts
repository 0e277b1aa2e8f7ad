/** How agents find each other's data plane; travels in `who` and `agents` answers. */
export interface PeerAddr {
  agent: string;
  host: string;
  ip: string;
  port: number;
  /** The publisher of the tree (the driver): asked last, to spread load over receivers. */
  origin?: boolean;
  /** Its data plane speaks TLS (--tls). */
  tls?: boolean;
}

export function parsePeerAddr(raw: unknown): PeerAddr | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const r = raw as Record<string, unknown>;
  if (typeof r.agent !== 'string' || typeof r.host !== 'string' || typeof r.ip !== 'string') return undefined;
  if (typeof r.port !== 'number' || !Number.isInteger(r.port) || r.port <= 0 || r.port > 65535) return undefined;
  return { agent: r.agent, host: r.host, ip: r.ip, port: r.port, origin: r.origin === true, ...(r.tls === true ? { tls: true } : {}) };
}

const keys = new WeakMap<object, string>();

/**
 * "ip:port", the key of a peer in the fetcher's maps. Kept per address object (an address is never
 * changed once made): the fetcher asks for it several times per source each time it picks one, and
 * building and hashing a new string each time cost a chain hop ~0.1 s of its main thread per 200 MiB.
 */
export function addrKey(a: Pick<PeerAddr, 'ip' | 'port'>): string {
  let k = keys.get(a);
  if (k === undefined) {
    k = `${a.ip}:${a.port}`;
    keys.set(a, k);
  }
  return k;
}
