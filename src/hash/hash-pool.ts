import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { DftfsError } from '../errors.js';
import type { FilesJob, FilesResult, HashJob, HashResult, RangeJob } from './hash-job.js';
import { jobBytes, runHashJob } from './hash-run.js';

export type HashRequest = Omit<RangeJob, 'id' | 'kind'>;

/** An inline budget for commands that hash a tree or a file once (index, serve, drive, bcast). */
export const INLINE_HASH_BYTES = 64 * 1024 * 1024;

/** A job bigger than this never runs inline: it would hold the event loop for more than ~20 ms. */
const INLINE_JOB_MAX_BYTES = 16 * 1024 * 1024;

export interface HashPoolOptions {
  /**
   * Run jobs on the calling thread, starting no worker thread, until they add up to this many
   * bytes (default 0: threads from the start). Starting the threads costs 0.2-0.5 s of wall time
   * on a busy 2-core machine (V8 boots an isolate per thread, then loads the hasher), while
   * hashing 32 MiB inline costs ~30 ms: a small tree is indexed before a thread would be up.
   * Once the work outgrows the budget (or one job is over 16 MiB), the threads start and take the rest.
   */
  inlineBytes?: number;
}

/**
 * A fixed set of worker threads that digest file ranges, so every core hashes. Jobs queue in
 * submission order; callers submit the largest work first for a good balance. With
 * `inlineBytes`, small work runs on the calling thread and the threads start only when needed.
 */
export class HashPool {
  readonly threads: number;
  private started = false;
  private inlineLeft: number;
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: HashJob[] = [];
  private readonly pending = new Map<number, { resolve: (r: HashResult | FilesResult) => void; reject: (e: Error) => void }>();
  private readonly running = new Map<Worker, number>();
  private nextId = 1;
  private closing: Promise<void> | undefined;

  constructor(threads = os.availableParallelism(), opts: HashPoolOptions = {}) {
    this.threads = Math.max(1, threads);
    this.inlineLeft = opts.inlineBytes ?? 0;
    if (this.inlineLeft <= 0) this.start();
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    for (let i = 0; i < this.threads; i++) this.spawn();
  }

  /** Whether the pool's threads were started (false while all its work ran inline). */
  get threadsStarted(): boolean {
    return this.started;
  }

  private spawn(): void {
    const w = new Worker(new URL('./hash-worker.js', import.meta.url));
    w.unref();
    w.on('message', (r: HashResult | FilesResult) => {
      this.running.delete(w);
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      p?.resolve(r);
      this.idle.push(w);
      this.pump();
    });
    w.on('error', (err) => {
      // A crashed worker fails its job and is replaced so the pool keeps its size.
      const id = this.running.get(w);
      this.running.delete(w);
      if (id !== undefined) {
        this.pending.get(id)?.reject(err);
        this.pending.delete(id);
      }
      this.workers.splice(this.workers.indexOf(w), 1);
      if (!this.closing) {
        this.spawn();
        this.pump();
      }
    });
    this.workers.push(w);
    this.idle.push(w);
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.running.set(w, job.id);
      w.postMessage(job);
    }
  }

  /** Queues a job; the worker answers a RangeJob with a HashResult and a FilesJob with a FilesResult. */
  private enqueue<R extends HashResult | FilesResult>(job: Omit<RangeJob, 'id'> | Omit<FilesJob, 'id'>): Promise<R> {
    if (this.closing) return Promise.reject(new DftfsError('ERR_DFTFS_CLOSED', 'hash pool is closed'));
    const id = this.nextId++;
    const bytes = jobBytes(job);
    if (!this.started && bytes <= INLINE_JOB_MAX_BYTES && bytes <= this.inlineLeft) {
      this.inlineLeft -= bytes;
      // On a later turn of the event loop, so a caller submitting many jobs gets its promises first.
      return new Promise<R>((resolve) => setImmediate(() => resolve(runHashJob({ ...job, id } as HashJob) as R)));
    }
    this.start();
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: HashResult | FilesResult) => void, reject });
      this.queue.push({ ...job, id } as HashJob);
      this.pump();
    });
  }

  /** Digest a range; resolves with the worker's result (which may carry an error code). */
  submit(req: HashRequest): Promise<HashResult> {
    return this.enqueue({ kind: 'range', ...req });
  }

  /** Digests small files whole, in one job (each entry of the result may carry an error). */
  submitFiles(files: FilesJob['files']): Promise<FilesResult> {
    return this.enqueue({ kind: 'files', files });
  }

  /** Stops every worker; idempotent, returns the same promise each time. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const [, p] of this.pending) p.reject(new DftfsError('ERR_DFTFS_CLOSED', 'hash pool closed'));
      this.pending.clear();
      await Promise.all(this.workers.map((w) => w.terminate()));
    })();
    return this.closing;
  }
}
