import type { Digest } from '../hash/index.js';
import { updateToc, type IndexResult, type StateRecord } from '../indexer/index.js';
import { TocView, type Toc, type TocEntry } from '../toc/index.js';
import type { Agent } from './agent.js';

export interface Published {
  generation: number;
  root: Digest;
  /** Digest of the TOC object announced (absent when nothing changed, or the generation was made from a delta). */
  tocDigest?: Digest;
  /** The whole TOC, when the tree was indexed. */
  toc?: Toc;
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
  /** The last generation when it was indexed; its view is made only when a delta needs one. */
  private indexed: IndexResult | undefined;
  /**
   * The last generation as a view, to apply deltas to. Made from an indexed TOC on first use:
   * `serve` always indexes, and a view of a 100,000-file tree is tens of MB it has no use for.
   */
  private view: TocView | undefined;
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

  /** The entry at `name` in the last generation published (a hardlink resolved), if any. */
  entry(name: string): TocEntry | undefined {
    return this.lastView()?.get(name);
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
    const base = w.full ? undefined : this.lastView();
    if (base) {
      const update = updateToc(this.dir, base, w.names, w.known);
      if (update) {
        await this.record?.(update.records);
        if (update.delta.set.length === 0 && update.delta.remove.length === 0) return this.unchanged(false);
        const view = base.apply(update.delta, generation);
        if (view.root === this.root) return this.unchanged(false);
        const { digest } = await this.agent.publishTree(this.dir, { view, delta: update.delta });
        this.view = view;
        return this.published(view.generation, view.root, undefined, digest);
      }
    }
    const indexed = await this.index(generation);
    const { toc } = indexed;
    if (toc.root === this.root) return this.unchanged(true);
    const { digest } = await this.agent.publishTree(this.dir, { toc });
    this.indexed = indexed;
    this.view = undefined;
    return this.published(toc.generation, toc.root, toc, digest);
  }

  private lastView(): TocView | undefined {
    if (!this.view && this.indexed) {
      this.view = TocView.of(this.indexed.toc, this.indexed.dirs);
      this.indexed = undefined;
    }
    return this.view;
  }

  private unchanged(indexed: boolean): Published {
    return { generation: this.generation, root: this.root!, changed: false, indexed };
  }

  private published(generation: number, root: Digest, toc: Toc | undefined, tocDigest: Digest | undefined): Published {
    this.generation = generation;
    this.root = root;
    return { generation, root, ...(toc ? { toc } : {}), ...(tocDigest ? { tocDigest } : {}), changed: true, indexed: toc !== undefined };
  }
}
