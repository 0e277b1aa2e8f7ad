import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../log.js';
import type { Captured } from './run-captured.js';

const log = createLogger('make');

export type SpawnRequest =
  | { type: 'run'; id: number; argv: string[]; cwd: string; env: Record<string, string>; maxBytes: number }
  | { type: 'read'; file: string }
  | { type: 'stop' };
export type SpawnReply = ({ id: number } & Captured) | { ready: true } | { read: string };

/** How long warm() waits for the helper to say it is up before giving up on waiting (it may still come). */
const READY_WAIT_MS = 10_000;

const MAIN = fileURLToPath(new URL('./spawner-main.js', import.meta.url));

/**
 * Starts a worker's jobs from a small helper process instead of from the worker itself. Node's
 * spawn forks the calling process and blocks it until the child has exec'd; the cost of a fork
 * grows with the memory mapped, and a mount's worker maps a lot: 10-40 ms per job on this
 * project's 2-core machines, during which the worker answers no FUSE request, no peer and no
 * NATS message. The helper forks in 2-3 ms and only it waits. It also means a job can be started
 * with its working directory inside the worker's own mount (the chdir happens in a child of the
 * helper, while the worker is free to answer it).
 *
 * Jobs run in process groups of their own; stop() ends them all (SIGTERM to each group), and so
 * does the helper when the worker goes away without a word (its IPC channel closes).
 */
export class Spawner {
  private child: ChildProcess | undefined;
  private ready: Promise<void> | undefined;
  private nextId = 0;
  private readonly waiting = new Map<number, (c: Captured) => void>();
  /** Files sent to readThrough() that the helper has not finished reading. */
  reading = 0;

  /** `closeFds`: descriptors of this process (held without close-on-exec) the helper must not hold. */
  constructor(private readonly closeFds: () => number[]) {}

  private start(): ChildProcess {
    // Through bash, which closes the descriptors before Node starts: a helper still starting
    // while holding /dev/fuse would keep a killed worker's FUSE connection up for ~0.1 s. bash,
    // because dash cannot name descriptors above 9.
    const close = this.closeFds().map((fd) => `${fd}<&-`).join(' ');
    const child = spawn('/bin/bash', ['-c', `exec "$0" "$@" ${close}`, process.execPath, MAIN], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let up!: () => void;
    this.ready = new Promise<void>((resolve) => {
      up = resolve;
      const t = setTimeout(resolve, READY_WAIT_MS);
      t.unref();
    });
    child.on('message', (r: SpawnReply) => {
      if ('ready' in r) return up();
      if ('read' in r) {
        this.reading--;
        return;
      }
      const done = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      done?.({ status: r.status, stdout: r.stdout, stderr: r.stderr });
    });
    child.on('exit', (code, signal) => {
      up();
      if (this.child === child) this.child = undefined;
      const why = Buffer.from(`dftfs: the job spawner exited (${signal ?? code}) before the job did\n`).toString('base64');
      for (const done of this.waiting.values()) done({ status: 127, stdout: '', stderr: why });
      this.waiting.clear();
      this.reading = 0;
    });
    child.on('error', (err) => log.debug('job spawner:', err.message));
    return child;
  }

  /**
   * Starts the helper now rather than on the first job; resolves once it is up (a Node start-up,
   * ~0.15 s of CPU: better spent before a build than during its first jobs).
   */
  warm(): Promise<void> {
    this.child ??= this.start();
    return this.ready ?? Promise.resolve();
  }

  /** Runs `/bin/sh ARGV` in `cwd` with exactly `env`, capturing at most `maxBytes` of each output stream. */
  run(argv: string[], opts: { cwd: string; env: Record<string, string>; maxBytes: number }): Promise<Captured> {
    this.child ??= this.start();
    const id = ++this.nextId;
    const child = this.child;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      child.send({ type: 'run', id, argv, ...opts } satisfies SpawnRequest);
    });
  }

  /**
   * Has the helper read `file` (a path inside the worker's mount) to its end and drop the bytes:
   * the kernel keeps them in the mount's page cache, so a job reading the file later is answered
   * without a FUSE round trip per 128 KiB. The worker cannot read its own mount itself: each of
   * those reads holds a thread of its pool, which the FUSE handlers need to answer them.
   */
  readThrough(file: string): void {
    if (!this.child) return;
    this.reading++;
    this.child.send({ type: 'read', file } satisfies SpawnRequest);
  }

  /** Ends every running job (their results come back as killed). */
  stop(): void {
    this.child?.send({ type: 'stop' } satisfies SpawnRequest);
  }

  /** Lets the helper go (it exits when its channel closes, ending any job still running). */
  close(): void {
    const child = this.child;
    this.child = undefined;
    if (child?.connected) child.disconnect();
  }
}
