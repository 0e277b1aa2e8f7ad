import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { descOf, describeBytes } from '../agent/index.js';
import type { TreeMount } from '../fs/index.js';
import { HashPool } from '../hash/index.js';
import { createLogger } from '../log.js';
import { parseJob, RESULT_MESSAGE_MAX_BYTES, type Job, type JobResult, type Output, type ResultRef } from './job.js';
import type { Captured } from './run-captured.js';
import { Spawner } from './spawner.js';

const log = createLogger('make');

/** How often a worker tells drivers it is alive and which jobs it runs. */
export const HEARTBEAT_MS = 1000;
/** A job waits this long for the driver's TOC generation that holds its inputs. */
const GENERATION_WAIT_MS = 30_000;
/** Job output kept per stream (like a terminal's scrollback, not a log). */
const MAX_OUTPUT_BYTES = 256 * 1024;
/**
 * Output files up to this size travel inside the result, up to INLINE_BUDGET_BYTES of them per
 * result: the driver then stores them without a round trip to this worker's data plane.
 */
const INLINE_MAX_BYTES = 64 * 1024;
const INLINE_BUDGET_BYTES = 128 * 1024;
/** How long a finished job's result is offered to the driver before the worker gives up. */
const RESULT_TIMEOUT_MS = 120_000;
/** Releases of a finished job's files arrive within microseconds to milliseconds of its exit. */
const RELEASE_WAIT_MS = 100;
const TARGET_RELEASE_WAIT_MS = 2000;
/**
 * Prerequisites of this size are read through the mount by the spawner once fetched, while the
 * recipe starts (see Spawner.readThrough): below it a file costs the job a few FUSE reads, and
 * reading it through would add an open and a release; above it the page cache would hold bytes a
 * job may never read.
 */
const READ_THROUGH_MIN_BYTES = 512 * 1024;
const READ_THROUGH_MAX_BYTES = 64 * 1024 * 1024;
/** How long close() waits for killed jobs to exit before unmounting anyway. */
const JOB_STOP_WAIT_MS = 3000;

interface Running {
  job: Job;
  reads: Set<string>;
  alone: boolean;
}

/**
 * Runs the make driver's jobs inside a mount: brings the view to the job's generation, prefetches
 * the prerequisites, runs `/bin/sh` in the job's directory, then hashes what the job wrote into
 * the host store and hands the list to the driver, which takes the outputs home.
 */
export class Worker {
  private readonly running = new Map<string, Running>();
  /** Finished jobs whose result the driver has not acknowledged yet: still listed as ours. */
  private readonly reporting = new Set<string>();
  /** The upper layer's change number of each output when it was reported to the driver. */
  private readonly reportedSeq = new Map<string, number>();
  private toSettle: Array<{ name: string; digest: string; generation: number }> = [];
  private readonly pool = new HashPool(Math.max(1, Math.min(2, os.availableParallelism())));
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;
  /** Starts jobs from a small process of its own (see spawner.ts); stop() sends their groups SIGTERM. */
  private readonly spawner = new Spawner(() => this.fuseFds());
  private readonly execs = new Set<Promise<Captured>>();
  jobsRun = 0;

  constructor(private readonly mount: TreeMount, readonly slots: number) {}

  /**
   * Starts the job spawner, then offers this worker to drivers (job offers, status heartbeats): a
   * driver sees the worker only once it can start jobs without a Node start-up in their way.
   */
  async start(): Promise<void> {
    await this.spawner.warm();
    if (this.closed) return;
    const { bus } = this.mount.agent;
    bus.subscribe(bus.subject('worker', this.key, 'job'), (b, reply) => {
      let job: Job;
      try {
        job = parseJob(b.job);
      } catch (err) {
        reply({ ok: false, reason: (err as Error).message });
        return;
      }
      if (this.closed || this.running.size >= this.slots) return reply({ ok: false, reason: 'busy' });
      reply({ ok: true });
      void this.run(job, String(b.driver));
    });
    // A driver starting asks every worker for its status at once rather than waiting up to a heartbeat.
    bus.subscribe(bus.subject('worker', 'ping'), () => this.beat());
    this.mount.openListeners.add((name, write) => {
      if (write) return;
      for (const r of this.running.values()) r.reads.add(name);
    });
    this.beat();
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
  }

  get id(): string {
    return this.mount.agent.id;
  }

  private get key(): string {
    return this.id.replace(/[.*> ]/g, '_');
  }

  private beat(): void {
    this.settleIfIdle();
    const { agent } = this.mount;
    agent.bus.publish(agent.bus.subject('worker', 'status'), {
      worker: this.id, key: this.key, host: agent.hostId, slots: this.slots, running: [...this.running.keys(), ...this.reporting], generation: this.mount.generation,
    });
  }

  private async run(job: Job, driver: string): Promise<void> {
    const started = performance.now();
    // Reads are told apart by time only: a job is alone if nothing else reads the mount meanwhile,
    // the spawner's read-through of an earlier job's prerequisites included.
    const entry: Running = { job, reads: new Set(), alone: this.running.size === 0 && this.spawner.reading === 0 };
    for (const other of this.running.values()) other.alone = false;
    this.running.set(job.id, entry);
    this.beat();
    let result: JobResult;
    try {
      const view = await this.mount.follower.waitForGeneration(job.generation, GENERATION_WAIT_MS);
      log.debug('job', job.id, 'has its generation at', Math.round(performance.now() - started), 'ms');
      // Fetch every prerequisite the tree holds, all at once, while the recipe starts: a read
      // through the mount joins the fetch of its file and is answered once its chunks are here.
      // (Waiting for them first cost the first wave of a build 0.1-0.45 s per job, in series
      // with process start-up and whatever the recipe does before it reads.) Once here, a big one
      // is read through the mount into the page cache while the job still runs.
      const hints = this.mount.follower.originAddr ? [this.mount.follower.originAddr] : [];
      for (const p of job.prereqs) {
        const name = path.posix.normalize(path.posix.join(job.cwd, p));
        const e = view.get(name);
        if (e?.type === 'reg' && e.size) {
          const readThrough = e.size >= READ_THROUGH_MIN_BYTES && e.size <= READ_THROUGH_MAX_BYTES;
          this.mount.agent.fetch(descOf(e), { hints, descFromOrigin: true }).then(
            (r) => {
              log.debug('job', job.id, 'has', p, `(${r.how}) at`, Math.round(performance.now() - started), 'ms');
              if (readThrough && this.running.has(job.id)) this.spawner.readThrough(path.join(this.mount.mountpoint, name));
            },
            () => undefined,
          );
        }
      }
      const mark = this.mount.upper.mark();
      const { status, stdout, stderr } = await this.exec(job);
      // Killed because this worker is stopping: no result, so the driver runs the job elsewhere.
      if (this.closed) return;
      entry.alone &&= this.running.size === 1;
      log.debug('job', job.id, 'ran at', Math.round(performance.now() - started), 'ms');
      await this.releasesOf(job, mark);
      log.debug('job', job.id, 'files released at', Math.round(performance.now() - started), 'ms');
      const outputs = await this.collect(mark);
      log.debug('job', job.id, 'collected at', Math.round(performance.now() - started), 'ms');
      result = {
        id: job.id, attempt: job.attempt, worker: this.id, host: this.mount.agent.hostId, addr: this.mount.agent.addr, status, stdout, stderr, outputs,
        reads: [...entry.reads], alone: entry.alone, ms: performance.now() - started,
      };
    } catch (err) {
      result = {
        id: job.id, attempt: job.attempt, worker: this.id, host: this.mount.agent.hostId, status: 1, stdout: '',
        stderr: Buffer.from(`dftfs worker ${this.id}: ${(err as Error).message}\n`).toString('base64'), outputs: [], reads: [], alone: false, ms: performance.now() - started,
      };
    } finally {
      // Until the driver has taken its outputs (which can take longer than a heartbeat), the job
      // stays in the heartbeat's list, or the driver would take it for lost and run it again.
      if (!this.closed) this.reporting.add(job.id);
      this.running.delete(job.id);
    }
    this.jobsRun++;
    const { bus } = this.mount.agent;
    try {
      const ack = await bus.request(bus.subject('driver', driver, 'result'), await this.message(result), RESULT_TIMEOUT_MS);
      // The driver holds the outputs now: once this view has its generation, drop the upper
      // copies so later versions from other workers show through.
      log.debug('job', job.id, 'result acknowledged at', Math.round(performance.now() - started), 'ms');
      if (typeof ack.generation === 'number') this.settle(result.outputs, ack.generation);
    } catch (err) {
      log.debug('driver did not take the result of', job.id, (err as Error).message);
    } finally {
      this.reporting.delete(job.id);
    }
    this.beat();
  }

  /** The result itself, or when bigger than a NATS message should be, a reference to it stored in this host's store. */
  private async message(result: JobResult): Promise<JobResult | ResultRef> {
    const body = Buffer.from(JSON.stringify(result));
    if (body.length <= RESULT_MESSAGE_MAX_BYTES) return result;
    const ref = describeBytes(body);
    await this.mount.agent.storeBytes(ref, body);
    log.debug('job', result.id, 'result of', String(body.length), 'bytes sent by reference');
    return { id: result.id, attempt: result.attempt, worker: result.worker, addr: result.addr, ref };
  }

  private exec(job: Job): Promise<Captured> {
    const cwd = path.join(this.mount.mountpoint, job.cwd);
    const run = this.spawner.run(job.argv, { cwd, env: { ...job.env, PWD: cwd, DFTFS_WORKER: this.id }, maxBytes: MAX_OUTPUT_BYTES });
    this.execs.add(run);
    return run.finally(() => this.execs.delete(run));
  }

  /** This process's descriptors open on /dev/fuse. */
  private fuseFds(): number[] {
    return fs.readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`) === '/dev/fuse';
      } catch {
        return false;
      }
    }).map(Number);
  }

  /**
   * The kernel sends FUSE `release` after the writer's close() has returned, so a job can exit
   * before its files are released. Wait for that, briefly for every file written since `mark`
   * but the targets of other jobs running here, longer for the job's own target; files still open
   * after that belong to other running jobs.
   */
  private async releasesOf(job: Job, mark: number): Promise<void> {
    const { upper } = this.mount;
    const targetOf = (j: Job) => path.posix.normalize(path.posix.join(j.cwd, j.target));
    const target = targetOf(job);
    // The target of another job running here is that job's to wait for (in the first wave of a
    // build, each job waited out the 100 ms for its neighbours' outputs, still being written).
    const theirs = new Set([...this.running.values()].filter((r) => r.job !== job).map((r) => targetOf(r.job)));
    theirs.delete(target);
    const started = performance.now();
    for (;;) {
      const open = upper.changedSince(mark).filter((c) => !c.deleted && !theirs.has(c.name) && upper.isOpenForWrite(c.name)).map((c) => c.name);
      const waited = performance.now() - started;
      if (open.length === 0 || (waited > RELEASE_WAIT_MS && !open.includes(target)) || waited > TARGET_RELEASE_WAIT_MS) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** What changed in the upper layer since `mark`, skipping files another job still has open for writing. */
  private async collect(mark: number): Promise<Output[]> {
    const { upper, agent } = this.mount;
    const out: Output[] = [];
    let inlineLeft = INLINE_BUDGET_BYTES;
    for (const c of upper.changedSince(mark)) {
      if (c.deleted) {
        if (!upper.has(c.name)) out.push({ seq: c.seq, name: c.name, type: 'deleted' });
        continue;
      }
      if (upper.isOpenForWrite(c.name)) continue;
      const real = upper.real(c.name);
      const st = upper.stat(c.name);
      if (!st) continue;
      if (st.isDirectory()) out.push({ seq: c.seq, name: c.name, type: 'dir', mode: st.mode & 0o7777 });
      else if (st.isSymbolicLink()) out.push({ seq: c.seq, name: c.name, type: 'symlink', linkName: await fsp.readlink(real) });
      else if (st.isFile()) {
        // Another job on this mount may rename or delete a file it wrote (`mv $@.tmp $@`) while
        // this one collects: that job reports the change, this one just skips the file.
        const adopted = await agent.adopt(real, this.pool).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT' && !upper.has(c.name)) return undefined;
          throw err;
        });
        if (!adopted) continue;
        const { desc, bytes } = adopted;
        this.reportedSeq.set(c.name, upper.changeSeq(c.name));
        const inline = bytes && bytes.length > 0 && bytes.length <= Math.min(INLINE_MAX_BYTES, inlineLeft);
        if (inline) inlineLeft -= bytes.length;
        out.push({ seq: c.seq, name: c.name, type: 'reg', mode: st.mode & 0o7777, mtimeMs: st.mtimeMs, desc, ...(inline ? { data: bytes.toString('base64') } : {}) });
      }
    }
    return out;
  }

  /**
   * Queues the upper copies of outputs the driver now holds for removal, once this view has the
   * driver's generation with the same content; removals wait until no job runs on this worker, so
   * a job appending to a file a previous recipe line made never loses its write.
   */
  private settle(outputs: Output[], generation: number): void {
    for (const o of outputs) if (o.type === 'reg') this.toSettle.push({ name: o.name, digest: o.desc.digest, generation });
    this.settleIfIdle();
  }

  private settleIfIdle(): void {
    if (this.running.size > 0 || this.toSettle.length === 0) return;
    const view = this.mount.follower.view;
    const later: typeof this.toSettle = [];
    for (const s of this.toSettle) {
      if (view.generation < s.generation) { later.push(s); continue; }
      if (view.get(s.name)?.digest === s.digest) this.mount.upper.settle(s.name, this.reportedSeq.get(s.name) ?? -1);
    }
    this.toSettle = later;
  }

  /** Stops taking jobs and ends the running ones (they hold the mount busy); the driver re-runs them elsewhere. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    this.spawner.stop();
    await Promise.race([Promise.all(this.execs), new Promise((r) => setTimeout(r, JOB_STOP_WAIT_MS))]);
    this.spawner.close();
    await this.pool.close();
  }
}
