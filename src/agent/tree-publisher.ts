import type { Digest } from '../hash/index.js';
import { updateToc, type IndexResult, type StateRecord } from '../indexer/index.js';
import { TocView, type Toc } from '../toc/index.js';
import type { Agent } from './agent.js';

export interface Published {
  generation: number;
  root: Digest;
  /** Digest of the TOC object announced (absent when nothing changed, or the generation was made from a delta). */
  tocDigest?: Digest;
  /** The tree as published. */
  view: TocView;
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
    if (!w.full && this.view) {
      const update = updateToc(this.dir, this.view, w.names, w.known);
      if (update) {
        await this.record?.(update.records);
        if (update.delta.set.length === 0 && update.delta.remove.length === 0) return this.unchanged(false);
        const view = this.view.apply(update.delta, generation);
        if (view.root === this.view.root) return this.unchanged(false);
        const { digest } = await this.agent.publishTree(this.dir, { view, delta: update.delta });
        return this.published(view, undefined, digest);
      }
    }
    const { toc, dirs } = await this.index(generation);
    if (toc.root === this.view?.root) return this.unchanged(true);
    const view = TocView.of(toc, dirs);
    const { digest } = await this.agent.publishTree(this.dir, { view, toc });
    return this.published(view, toc, digest);
  }

  private unchanged(indexed: boolean): Published {
    return { generation: this.generation, root: this.view!.root, view: this.view!, changed: false, indexed };
  }

  private published(view: TocView, toc: Toc | undefined, tocDigest: Digest | undefined): Published {
    this.generation = view.generation;
    this.view = view;
    return { generation: view.generation, root: view.root, view, ...(toc ? { toc } : {}), ...(tocDigest ? { tocDigest } : {}), changed: true, indexed: toc !== undefined };
  }
}
