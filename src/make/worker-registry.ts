import { HEARTBEAT_MS } from './worker.js';

/** A worker is taken for dead after this many missed heartbeats. */
const DEAD_AFTER_BEATS = 4;
/** A worker restarted under the same id forgets its jobs; give a fresh job this long to show up in its status. */
const JOB_LISTED_GRACE_MS = 3 * HEARTBEAT_MS;

export interface WorkerInfo {
  worker: string;
  key: string;
  host: string;
  slots: number;
  running: Set<string>;
  seenMs: number;
}

/** The workers the driver has heard from, kept fresh by their heartbeats. */
export class WorkerRegistry {
  private readonly byId = new Map<string, WorkerInfo>();
  private waiters: Array<() => void> = [];

  update(b: Record<string, unknown>): void {
    if (typeof b.worker !== 'string' || typeof b.key !== 'string' || typeof b.host !== 'string' || typeof b.slots !== 'number' || !Array.isArray(b.running)) return;
    this.byId.set(b.worker, {
      worker: b.worker, key: b.key, host: b.host, slots: Math.max(0, Math.floor(b.slots)),
      running: new Set(b.running.filter((x): x is string => typeof x === 'string')), seenMs: performance.now(),
    });
    this.wake();
  }

  /** Wakes every `changed` waiter: a slot may be free (a worker's status came, or a job's result did). */
  wake(): void {
    for (const w of this.waiters) w();
    this.waiters = [];
  }

  live(): WorkerInfo[] {
    const now = performance.now();
    return [...this.byId.values()].filter((w) => now - w.seenMs < DEAD_AFTER_BEATS * HEARTBEAT_MS && w.slots > 0);
  }

  /** True when the worker holding `job` is dead, or alive but no longer running it. */
  lostJob(worker: string, job: string, acceptedMs: number): boolean {
    const w = this.byId.get(worker);
    const now = performance.now();
    if (!w || now - w.seenMs >= DEAD_AFTER_BEATS * HEARTBEAT_MS) return true;
    return w.seenMs > acceptedMs + JOB_LISTED_GRACE_MS && !w.running.has(job);
  }

  /** Resolves at the next heartbeat or `wake`, or after `ms`. */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => { clearTimeout(t); resolve(); });
    });
  }
}
