import type { Bus } from '../bus/index.js';
import { isDigest, type Digest } from '../hash/index.js';
import type { Holder } from './fetcher.js';
import { parseDesc, type ObjectDesc } from './object-desc.js';
import { parsePeerAddr, type PeerAddr } from './peer-addr.js';

/** Objects whose holders a tracker remembers; the least recently announced are forgotten first (~200 B each). */
export const TRACKED_OBJECTS_MAX = 65_536;
/** An asker counts as a partial holder this long after it asked (it is receiving the object). */
export const PARTIAL_HOLDER_MS = 5 * 60_000;
/** Holders named per answer, of each kind: enough sources to spread a swarm, a bounded message. */
export const HOLDERS_PER_ANSWER = 8;
/** Agents named per holding host: the host's store is shared, any live agent of it serves it. */
const AGENTS_PER_HOST = 2;

/** A holder as it travels in a `who` or `track` answer. */
export interface HolderAnswer extends PeerAddr {
  /** 'all'; 'some' (receiving it now, which chunks unknown); or the chunk indices held. */
  have: 'all' | 'some' | number[];
  desc?: ObjectDesc;
}

export type FoundHolder = Holder & { desc?: ObjectDesc };

/** Reads holders out of answers from the network; anything malformed is left out. */
export function parseHolders(raw: unknown[], self: string): FoundHolder[] {
  const out: FoundHolder[] = [];
  for (const a of raw) {
    const addr = parsePeerAddr(a);
    if (!addr || addr.agent === self) continue;
    const r = a as Record<string, unknown>;
    const have = r.have === 'all' || r.have === 'some' ? r.have
      : Array.isArray(r.have) ? new Set(r.have.filter((n): n is number => Number.isSafeInteger(n) && n >= 0)) : undefined;
    if (!have) continue;
    let desc: ObjectDesc | undefined;
    try {
      desc = r.desc ? parseDesc(r.desc) : undefined;
    } catch {
      desc = undefined;
    }
    out.push({ addr, have, ...(desc ? { desc } : {}) });
  }
  return out;
}

interface Tracked {
  /** Hosts whose store holds the whole object. */
  hosts: string[];
  /** Agents receiving it now (they asked), with when they asked (and the question's rank); made on the first question. */
  partial?: Map<string, { addr: PeerAddr; sinceMs: number; seq: number }>;
}

/** A copy of `items` in a random order. */
export function shuffled<T>(items: T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

const sample = <T>(items: T[], n: number): T[] => shuffled(items).slice(0, n);

/**
 * Who holds what, kept by the publisher of a tree (the origin) so that finding an object costs
 * one request and one answer on the control plane instead of a question every agent receives.
 * It learns whole holders from `have` announcements (per host: the host's agents share its
 * store), partial holders from the questions themselves (whoever asks is about to receive the
 * object and serves each chunk as soon as it is verified), and live agents from `hello`/`bye`.
 * An agent that finds no tracker, or a tracker that knows nobody, asks everyone (`who`).
 */
export class Tracker {
  private readonly objects = new Map<Digest, Tracked>();
  private readonly agents = new Map<string, Map<string, PeerAddr>>();
  /** Questions answered, to order an object's receivers by when they asked. */
  private questions = 0;

  /** `own` tells whether this agent itself holds an object whole (published or stored), with its descriptor if known. */
  constructor(private readonly self: PeerAddr, private readonly own: (object: Digest) => { desc?: ObjectDesc } | undefined) {}

  agentSeen(addr: PeerAddr): void {
    let host = this.agents.get(addr.host);
    if (!host) this.agents.set(addr.host, (host = new Map()));
    host.set(addr.agent, addr);
  }

  /** An agent that left is named no more, as a whole holder or as a receiver (its partials are dropped as they are met). */
  agentGone(addr: Pick<PeerAddr, 'agent' | 'host'>): void {
    const host = this.agents.get(addr.host);
    host?.delete(addr.agent);
    if (host?.size === 0) this.agents.delete(addr.host);
  }

  private live(a: PeerAddr): boolean {
    return this.agents.get(a.host)?.has(a.agent) === true;
  }

  /** `by`'s host store now holds these objects whole. */
  announced(by: PeerAddr, objects: Digest[]): void {
    this.agentSeen(by);
    for (const o of objects) {
      const t = this.entry(o);
      if (!t.hosts.includes(by.host)) t.hosts.push(by.host);
      t.partial?.delete(by.agent);
    }
  }

  /**
   * Holders of `object` for `asker`, who is from now on counted as a partial holder: the origin
   * (if it serves it), agents of hosts holding it whole, agents receiving it now.
   */
  ask(object: Digest, asker: PeerAddr): { holders: HolderAnswer[]; desc?: ObjectDesc } {
    this.agentSeen(asker);
    const now = Date.now();
    const t = this.objects.get(object);
    const holders = new Map<string, HolderAnswer>();
    const add = (a: PeerAddr, have: HolderAnswer['have']) => {
      if (a.agent !== asker.agent && !holders.has(a.agent)) holders.set(a.agent, { ...a, have });
    };
    const own = this.own(object);
    if (own) add(this.self, 'all');
    if (t) {
      // The asker's own host too: agents that share a host id need not share a store.
      const hosts = sample(t.hosts.filter((h) => this.agents.has(h)), HOLDERS_PER_ANSWER);
      for (const h of hosts) {
        for (const a of sample([...this.agents.get(h)!.values()], AGENTS_PER_HOST)) add(a, 'all');
      }
      for (const [agent, p] of t.partial ?? []) if (now - p.sinceMs > PARTIAL_HOLDER_MS || !this.live(p.addr)) t.partial!.delete(agent);
      // Latest first: a receiver that finds no whole copy but the origin's chains behind the first named (fetcher.ts).
      const receiving = [...t.partial?.values() ?? []].filter((p) => !t.hosts.includes(p.addr.host)).sort((a, b) => b.seq - a.seq);
      for (const p of receiving.slice(0, HOLDERS_PER_ANSWER)) add(p.addr, 'some');
    }
    if (!own || asker.agent !== this.self.agent) {
      const e = this.entry(object);
      (e.partial ??= new Map()).set(asker.agent, { addr: asker, sinceMs: now, seq: ++this.questions });
    }
    return { holders: [...holders.values()], ...(own?.desc ? { desc: own.desc } : {}) };
  }

  /** Objects remembered (for tests and status). */
  get size(): number {
    return this.objects.size;
  }

  /** The entry of an object, made the most recent; the oldest is dropped past the bound. */
  private entry(object: Digest): Tracked {
    let t = this.objects.get(object);
    if (t) this.objects.delete(object);
    else t = { hosts: [] };
    this.objects.set(object, t);
    if (this.objects.size > TRACKED_OBJECTS_MAX) this.objects.delete(this.objects.keys().next().value!);
    return t;
  }

  /**
   * Serves the tracker on the bus: `track` requests in the `trackers` queue group (one tracker
   * answers each), and every `hello`, `bye` and `have` (all trackers hear those). Agents that
   * were running before this tracker are the caller's to tell it of (agentSeen).
   */
  attach(bus: Bus): void {
    bus.subscribe(bus.subject('track'), (b, reply) => {
      const asker = parsePeerAddr(b.asker);
      if (!isDigest(b.object) || !asker) return;
      reply(this.ask(b.object, asker));
    }, { queue: 'trackers' });
    bus.subscribe(bus.subject('hello'), (b) => {
      const a = parsePeerAddr(b);
      if (a) this.agentSeen(a);
    });
    bus.subscribe(bus.subject('bye'), (b) => {
      const a = parsePeerAddr(b);
      if (a) this.agentGone(a);
    });
    bus.subscribe(bus.subject('have'), (b) => {
      const a = parsePeerAddr(b);
      const objects = Array.isArray(b.objects) ? b.objects.filter(isDigest) : [];
      if (a) this.announced(a, objects);
    });
  }
}
