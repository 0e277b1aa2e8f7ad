import type { Digest } from '../hash/index.js';
import { updateToc, type IndexResult, type StateRecord } from '../indexer/index.js';
import type { Toc } from '../toc/index.js';
import type { Agent } from './agent.js';

export interface Published {
  generation: number;
  root: Digest;
  /** Digest of the TOC object announced (absent when nothing changed). */
  tocDigest?: Digest;
  toc: Toc;
  /** False when the tree had not changed since the last publication (nothing announced). */
  changed: boolean;
  /** The whole tree was indexed (walked), not updated at known paths. */
  indexed: boolean;
}

/** Paths the caller itself changed, with a record (stat key and content) of each regular file it wrote. */
export interface KnownChanges {
  names: Iterable<string>;
  known: ReadonlyMap<string, StateRecord>;
}

interface Wanted {
  /** Something changed that only a walk of the tree finds. */
  full: boolean;
  names: Set<string>;
  known: Map<string, StateRecord>;
}

/**
 * Announces each new version of a tree as the next generation. One publication at a time; a
 * request made while one runs is folded into the next, so a burst of outputs costs at most two.
 * A request naming the paths it changed (the make driver's outputs) updates the last TOC at those
 * paths; one without re-indexes the tree.
 */
export class TreePublisher {
  private generation = -1;
  private root: Digest | undefined;
  private toc: Toc | undefined;
  private wanted: Wanted | undefined;
  private running: Promise<Published> | undefined;
  private queued: Promise<Published> | undefined;

  constructor(
    private readonly agent: Agent,
    private readonly dir: string,
    private readonly index: (generation: number) => Promise<IndexResult>,
    /** Keeps the index state in step with a TOC updated without indexing (so the next index reuses those digests). */
    private readonly record?: (records: ReadonlyMap<string, StateRecord | null>) => Promise<void>,
  ) {}

  get current(): number {
    return this.generation;
  }

  publish(changes?: KnownChanges): Promise<Published> {
    const w = (this.wanted ??= { full: false, names: new Set(), known: new Map() });
    if (!changes) w.full = true;
    else {
      for (const n of changes.names) w.names.add(n);
      for (const [n, k] of changes.known) w.known.set(n, k);
    }
    if (!this.running && !this.queued) return this.start();
    this.queued ??= (this.running ?? Promise.resolve()).catch(() => undefined).then(() => {
      this.queued = undefined;
      return this.start();
    });
    return this.queued;
  }

  private start(): Promise<Published> {
    const w = this.wanted!;
    this.wanted = undefined;
    this.running = this.run(w).finally(() => { this.running = undefined; });
    return this.running;
  }

  private async run(w: Wanted): Promise<Published> {
    const generation = this.generation + 1;
    let toc: Toc | undefined;
    let indexed = false;
    if (!w.full && this.toc) {
      const update = updateToc(this.dir, this.toc, w.names, w.known, generation);
      if (update) {
        await this.record?.(update.records);
        toc = update.toc;
      }
    }
    if (!toc) {
      toc = (await this.index(generation)).toc;
      indexed = true;
    }
    if (toc.root === this.root && this.toc) return { generation: this.generation, root: toc.root, toc: this.toc, changed: false, indexed };
    const { digest } = await this.agent.publishTree(this.dir, toc);
    this.generation = toc.generation;
    this.root = toc.root;
    this.toc = toc;
    return { generation: this.generation, root: this.root, tocDigest: digest, toc, changed: true, indexed };
  }
}
