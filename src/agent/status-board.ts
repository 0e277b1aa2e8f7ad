import fs from 'node:fs';
import path from 'node:path';

/** How often an agent rewrites its status file: `dftfs status` is for people, once a second is plenty. */
const STATUS_INTERVAL_MS = 1000;
const MAX_FAILURES = 20;

export interface TransferStatus {
  object: string;
  size: number;
  bytes: number;
  rateBytesPerSec: number;
  startedMs: number;
}

export interface AgentStatus {
  agent: string;
  pid: number;
  updatedMs: number;
  transfers: TransferStatus[];
  servedBytes: Record<string, number>;
  failures: Array<{ timeMs: number; message: string }>;
}

/**
 * An agent's transfers in progress, bytes served per peer and recent failures, written to
 * `<home>/status/<agent>.json` (atomically) for `dftfs status`.
 */
export class StatusBoard {
  readonly file: string;
  private readonly transfers = new Map<string, { size: number; startedMs: number; progress: () => number }>();
  private readonly servedTo: Record<string, number> = {};
  private readonly failures: AgentStatus['failures'] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(home: string, private readonly agent: string) {
    this.file = path.join(home, 'status', `${agent.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
  }

  start(): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    this.flush();
    this.timer = setInterval(() => this.flush(), STATUS_INTERVAL_MS);
    this.timer.unref();
  }

  beginTransfer(object: string, size: number, progress: () => number) {
    const t = { size, startedMs: Date.now(), progress };
    this.transfers.set(object, t);
    return {
      done: () => this.transfers.delete(object),
      failed: (why: string) => {
        this.transfers.delete(object);
        this.failure(`fetch of ${object} failed: ${why}`);
      },
    };
  }

  served(peer: string, bytes: number): void {
    this.servedTo[peer] = (this.servedTo[peer] ?? 0) + bytes;
  }

  failure(message: string): void {
    this.failures.push({ timeMs: Date.now(), message });
    if (this.failures.length > MAX_FAILURES) this.failures.shift();
  }

  snapshot(): AgentStatus {
    const now = Date.now();
    return {
      agent: this.agent,
      pid: process.pid,
      updatedMs: now,
      transfers: [...this.transfers].map(([object, t]) => {
        const bytes = t.progress();
        return { object, size: t.size, bytes, startedMs: t.startedMs, rateBytesPerSec: bytes / Math.max(0.001, (now - t.startedMs) / 1000) };
      }),
      servedBytes: { ...this.servedTo },
      failures: [...this.failures],
    };
  }

  private flush(): void {
    try {
      const tmp = `${this.file}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(this.snapshot()));
      fs.renameSync(tmp, this.file);
    } catch {
      /* status is best effort: never let it break a transfer */
    }
  }

  stop(): void {
    clearInterval(this.timer);
    fs.rmSync(this.file, { force: true });
  }
}

/** Reads the status files of the agents of a host that are still alive. */
export function readStatuses(home: string): AgentStatus[] {
  const dir = path.join(home, 'status');
  const out: AgentStatus[] = [];
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (!name.endsWith('.json')) continue;
    try {
      const s = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as AgentStatus;
      process.kill(s.pid, 0);
      out.push(s);
    } catch {
      /* gone */
    }
  }
  return out;
}
