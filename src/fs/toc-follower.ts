import fsp from 'node:fs/promises';
import { parseDesc, parsePeerAddr, type Agent, type ObjectDesc, type PeerAddr } from '../agent/index.js';
import { DftfsError } from '../errors.js';
import { isDigest } from '../hash/index.js';
import { createLogger } from '../log.js';
import { decodeTocDirs, TocView } from '../toc/index.js';

const log = createLogger('fuse');

/** How long to ask for the latest TOC at start before mounting an empty tree and waiting for one. */
const LATEST_TOC_WAIT_MS = 2000;

/**
 * Follows the driver's published TOC: asks for the latest one at start, then applies every newer
 * generation announced on `dftfs.<cluster>.toc`: from the delta in the announcement when this view
 * holds its base generation, else by fetching the whole TOC (the one the announcement names, or,
 * for a generation its publisher made from a delta and announced without one, the latest).
 */
export class TocFollower {
  private current: TocView = TocView.empty();
  private origin: string | undefined;
  /** The agent that published the applied TOC: it holds every object the TOC names. */
  originAddr: PeerAddr | undefined;
  private applying: Promise<void> = Promise.resolve();
  private readonly waiters = new Set<() => void>();

  constructor(private readonly agent: Agent, private readonly onApply: (view: TocView) => void = () => undefined) {}

  get view(): TocView {
    return this.current;
  }

  /** Subscribes to announcements and applies the latest TOC if a driver answers. */
  async start(): Promise<void> {
    const bus = this.agent.bus;
    bus.subscribe(bus.subject('toc'), (b) => this.consider(b));
    const latest = await bus.request(bus.subject('toc', 'latest'), {}, LATEST_TOC_WAIT_MS).catch(() => undefined);
    if (latest) this.consider(latest);
    await this.applying;
  }

  /** Resolves once a generation ≥ `generation` is applied; ERR_DFTFS_TIMEOUT after `timeoutMs`. */
  async waitForGeneration(generation: number, timeoutMs: number): Promise<TocView> {
    const deadline = performance.now() + timeoutMs;
    while (this.current.generation < generation) {
      const left = deadline - performance.now();
      if (left <= 0) throw new DftfsError('ERR_DFTFS_TIMEOUT', `TOC generation ${generation} did not arrive within ${timeoutMs / 1000} s (have ${this.current.generation})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, left);
        function done() { clearTimeout(t); resolve(); }
        this.waiters.add(done);
      });
    }
    return this.current;
  }

  private consider(b: Record<string, unknown>): void {
    this.applying = this.applying.then(() => this.apply(b)).catch((err: Error) => {
      log.debug('TOC announcement refused:', err.message);
    });
  }

  /** The announced generation from its delta, when this view holds the delta's base; else undefined. */
  private fromDelta(b: Record<string, unknown>, origin: string | undefined): TocView | undefined {
    const delta = b.delta as { baseRoot?: unknown } | undefined;
    if (!delta || origin !== this.origin || delta.baseRoot !== this.current.root || typeof b.root !== 'string') return undefined;
    try {
      return this.current.withDelta(delta, b.root, b.generation as number);
    } catch (err) {
      log.debug('TOC delta refused, fetching the whole TOC:', (err as Error).message);
      return undefined;
    }
  }

  /** The publisher's latest TOC object (stored when asked for), which must come from the same origin. */
  private async fetchLatest(origin: string | undefined): Promise<TocView> {
    const bus = this.agent.bus;
    const l = await bus.request(bus.subject('toc', 'latest'), {});
    if (parsePeerAddr(l.origin)?.agent !== origin) throw new DftfsError('ERR_DFTFS_PROTOCOL', 'the latest TOC comes from another publisher');
    if (typeof l.generation !== 'number') throw new DftfsError('ERR_DFTFS_PROTOCOL', 'malformed answer to toc latest');
    return this.fetchWhole(parseDesc(l.desc), l.generation);
  }

  /** A TOC is an object like any other: fetched over the data plane, verified by digest, then validated. */
  private async fetchWhole(desc: ObjectDesc, generation: number): Promise<TocView> {
    await this.agent.fetch(desc);
    const { toc, dirs } = decodeTocDirs(await fsp.readFile(this.agent.store.objectPath(desc.digest)));
    if (toc.generation !== generation) throw new DftfsError('ERR_DFTFS_MALFORMED_TOC', 'TOC generation differs from its announcement');
    return TocView.of(toc, dirs);
  }

  private async apply(b: Record<string, unknown>): Promise<void> {
    const generation = b.generation;
    const origin = parsePeerAddr(b.origin)?.agent;
    if (typeof generation !== 'number' || (b.digest !== undefined && !isDigest(b.digest))) throw new DftfsError('ERR_DFTFS_PROTOCOL', 'malformed TOC announcement');
    // A newer generation, or the first one from a driver that restarted (its count starts over).
    if (generation <= this.current.generation && origin === this.origin) return;
    if (b.root === this.current.root && origin === this.origin) return;
    const desc = b.desc === undefined ? undefined : parseDesc(b.desc);
    if (desc?.digest !== b.digest) throw new DftfsError('ERR_DFTFS_PROTOCOL', 'TOC announcement: descriptor and digest differ');
    // The latest can be newer than the announcement: the ones in between are then passed over.
    this.current = this.fromDelta(b, origin) ?? await (desc ? this.fetchWhole(desc, generation) : this.fetchLatest(origin));
    this.origin = origin;
    this.originAddr = parsePeerAddr(b.origin);
    log.debug('applied TOC generation', String(this.current.generation), this.current.root);
    this.onApply(this.current);
    for (const w of this.waiters) w();
    this.waiters.clear();
  }
}
