import type { Digest } from '../hash/index.js';
import type { IndexResult } from '../indexer/index.js';
import type { Agent } from './agent.js';

export interface Published {
  generation: number;
  root: Digest;
  /** Digest of the TOC object announced (absent when nothing changed). */
  tocDigest?: Digest;
  result: IndexResult;
  /** False when the tree had not changed since the last publication (nothing announced). */
  changed: boolean;
}

/**
 * Re-indexes a tree and announces each new version as the next generation. One publication at a
 * time; a request made while one runs is folded into the next, so a burst of outputs costs at
 * most two re-indexes.
 */
export class TreePublisher {
  private generation = -1;
  private root: Digest | undefined;
  private running: Promise<Published> | undefined;
  private queued: Promise<Published> | undefined;

  constructor(private readonly agent: Agent, private readonly dir: string, private readonly index: (generation: number) => Promise<IndexResult>) {}

  get current(): number {
    return this.generation;
  }

  publish(): Promise<Published> {
    if (!this.running) {
      this.running = this.run().finally(() => { this.running = undefined; });
      return this.running;
    }
    this.queued ??= this.running.catch(() => undefined).then(() => {
      this.queued = undefined;
      return this.publish();
    });
    return this.queued;
  }

  private async run(): Promise<Published> {
    const result = await this.index(this.generation + 1);
    if (result.toc.root === this.root && this.generation >= 0) {
      return { generation: this.generation, root: result.toc.root, result, changed: false };
    }
    const { digest } = await this.agent.publishTree(this.dir, result.toc);
    this.generation = result.toc.generation;
    this.root = result.toc.root;
    return { generation: this.generation, root: this.root, tocDigest: digest, result, changed: true };
  }
}
