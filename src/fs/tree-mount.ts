import path from 'node:path';
import { Agent, type AgentOptions } from '../agent/index.js';
import { mountsDir } from '../config.js';
import { digestBytes, digestHex } from '../hash/index.js';
import { createLogger } from '../log.js';
import type { TocView } from '../toc/index.js';
import { createFuseOps } from './fuse-ops.js';
import { AgentObjectSource } from './lower-file.js';
import { FuseMount, type MountOptions } from './mount.js';
import { TocFollower } from './toc-follower.js';
import { UpperLayer } from './upper-layer.js';

const log = createLogger('fuse');

/** A read waits at most this long for its chunks before failing with EIO (also the agent's stall limit). */
export const DEFAULT_FETCH_TIMEOUT_MS = 60_000;

export interface TreeMountOptions extends MountOptions {
  agent: AgentOptions;
  mountpoint: string;
  /** Upper layer and whiteouts; default `<home>/mounts/<digest of the mount point>`. */
  cacheDir?: string;
  fetchTimeoutMs?: number;
  onOpen?: (name: string, write: boolean) => void;
  onApply?: (view: TocView) => void;
}

/**
 * A worker's view of the driver's tree: an agent (serving what this host holds), a follower of
 * the published TOC, an upper layer for writes, and the FUSE mount over them.
 * Shuts down in reverse order: unmount, stop serving, drain NATS.
 */
export class TreeMount {
  private closing: Promise<void> | undefined;
  private fuse: FuseMount | undefined;
  follower!: TocFollower;
  upper!: UpperLayer;
  /** Told of every file opened through the mount (the make worker attributes reads to jobs). */
  readonly openListeners = new Set<(name: string, write: boolean) => void>();

  private constructor(readonly agent: Agent, readonly mountpoint: string) {}

  static async start(opts: TreeMountOptions): Promise<TreeMount> {
    const fetchTimeoutMs = opts.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
    const agent = await Agent.start({ ...opts.agent, fetchStallMs: fetchTimeoutMs });
    const m = new TreeMount(agent, path.resolve(opts.mountpoint));
    try {
      const key = digestHex(digestBytes(Buffer.from(m.mountpoint))).slice(0, 24);
      m.upper = await new UpperLayer(opts.cacheDir ?? path.join(mountsDir(opts.agent.home), key)).open();
      m.follower = new TocFollower(agent, opts.onApply);
      await m.follower.start();
      const ops = createFuseOps({
        view: () => m.follower.view,
        upper: m.upper,
        objects: new AgentObjectSource(agent, fetchTimeoutMs, () => (m.follower.originAddr ? [m.follower.originAddr] : [])),
        readOnly: opts.readOnly,
        uid: process.getuid?.() ?? 0,
        gid: process.getgid?.() ?? 0,
        onOpen: (name, write) => {
          opts.onOpen?.(name, write);
          for (const l of m.openListeners) l(name, write);
        },
      });
      m.fuse = await FuseMount.mount(m.mountpoint, ops, opts);
    } catch (err) {
      await m.close();
      throw err;
    }
    return m;
  }

  get generation(): number {
    return this.follower.view.generation;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.fuse) await this.fuse.unmount().catch((err: Error) => log.debug('unmount failed', err.message));
      await this.upper?.flush();
      await this.agent.close();
    })();
    return this.closing;
  }
}
