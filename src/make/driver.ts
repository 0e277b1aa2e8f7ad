import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Agent, TreePublisher, type AgentOptions } from '../agent/index.js';
import { DftfsError } from '../errors.js';
import type { Digest } from '../hash/index.js';
import type { IndexResult, StateRecord } from '../indexer/index.js';
import { createLogger } from '../log.js';
import { outsideRoot } from '../toc/index.js';
import { fetchOutputs, writeOutputs } from './apply-outputs.js';
import { parseJobResult, parseResultRef, type Job, type JobResult, type Output, type ResultRef } from './job.js';
import { runCaptured, type Captured } from './run-captured.js';
import { MAKE_EVALS, writeShim } from './shim.js';
import { WorkerRegistry } from './worker-registry.js';

const log = createLogger('make');

/** How long a worker may answer a job offer. */
const OFFER_TIMEOUT_MS = 2000;
/** How long to wait at start for workers to show up before running a job locally. */
const FIRST_WORKER_WAIT_MS = 2500;
/** How often the driver checks on workers that hold jobs. */
const WATCHDOG_MS = 500;
/** A job run on the driver hands its output to make through a file, so it need not be capped like a NATS message. */
const LOCAL_OUTPUT_BYTES = 64 * 1024 * 1024;

export interface DriveOptions {
  agent: AgentOptions;
  /** The tree make runs in (the driver's real tree). */
  dir: string;
  makeArgs: string[];
  make?: string;
  /** Fail a job rather than run it on the driver when no worker is connected. */
  noLocal?: boolean;
  index: (generation: number) => Promise<IndexResult>;
  /** Keeps the index state in step with outputs published without re-indexing the tree. */
  recordState?: (records: ReadonlyMap<string, StateRecord | null>) => Promise<void>;
  warn: (msg: string) => void;
}

export interface UndeclaredRead {
  target: string;
  file: string;
  producedBy: string;
}

export interface DriveSummary {
  status: number;
  jobs: number;
  jobsPerWorker: Record<string, number>;
  local: number;
  rerun: number;
  outputBytes: number;
  wallMs: number;
  generation: number;
  undeclared: UndeclaredRead[];
  /** Per job: ms from the shim announcing itself to its status being handed back. */
  jobMs: number[];
  /** Per job whose outputs changed the tree: ms its result waited for their publication (a new TOC generation). */
  publishMs: number[];
  /** CPU time of the driver's own process (not make, its shims or local jobs), ms. */
  cpuMs: number;
}

interface Pending {
  job: Job;
  worker: string;
  acceptedMs: number;
  /** Its result arrived and its outputs are being brought home: not lost, whatever heartbeats say. */
  landing?: boolean;
  resolve: (r: JobResult) => void;
}

/**
 * `dftfs drive make`: runs GNU make in the driver's tree with the job shim as its SHELL, sends
 * each recipe line to a worker, and takes the files the job wrote back into the tree before the
 * shim exits — a rule is done iff its outputs are on the driver.
 */
export class Driver {
  private agent!: Agent;
  private publisher!: TreePublisher;
  private readonly workers = new WorkerRegistry();
  private readonly pending = new Map<string, Pending>();
  private runDir = '';
  private shim = '';
  private fifo: net.Socket | undefined;
  private fifoFd: number | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private seq = 0;
  private dirty = false;
  private startedMs = 0;
  private readonly producedBy = new Map<string, string>();
  /** The newest change of each path written into the tree from a worker (see isNewest). */
  private readonly lastChange = new Map<string, { worker: string; seq: number }>();
  private writing: Promise<unknown> = Promise.resolve();
  /**
   * The hosts that hold a version of a path's bytes, or soon will: its job's host for an output,
   * every host a job that lists it as a prerequisite went to for an input (the worker fetches its
   * prerequisites as the job starts). What pickWorker sends a job by.
   */
  private readonly heldOn = new Map<string, { digest: Digest; size: number; hosts: Set<string> }>();
  private readonly prereqsOf = new Map<string, string[]>();
  private readonly results: Array<{ job: Job; result: JobResult }> = [];
  private readonly summary = { jobs: 0, local: 0, rerun: 0, outputBytes: 0, perWorker: new Map<string, number>(), jobMs: [] as number[], publishMs: [] as number[] };
  private warnedLocal = false;
  private make: ChildProcess | undefined;
  /** Shims waiting for their job's status (killed with make on Ctrl-C or SIGTERM). */
  private readonly shims = new Set<number>();
  private interrupted: NodeJS.Signals | undefined;
  private readonly onSignal = (signal: NodeJS.Signals) => this.interrupt(signal);

  constructor(private readonly o: DriveOptions) {}

  private get key(): string {
    return this.agent.id.replace(/[.*> ]/g, '_');
  }

  async run(): Promise<DriveSummary> {
    this.startedMs = performance.now();
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    // The shims' FIFO needs no agent: made (a fork of mkfifo) while the agent starts, not after
    // the first publication (30-45 ms before make could start, in a sleep-bound 64-rule build).
    const queue = this.openQueue();
    queue.catch(() => undefined); // handled here until awaited below, where its failure fails the drive
    try {
      this.agent = await Agent.start({ ...this.o.agent, origin: true });
      log.debug('agent started at', Math.round(performance.now()), 'ms after the process');
      this.publisher = new TreePublisher(this.agent, this.o.dir, this.o.index, this.o.recordState);
      await this.publisher.publish();
      log.debug('tree published at', Math.round(performance.now()), 'ms');
      const { bus } = this.agent;
      bus.subscribe(bus.subject('worker', 'status'), (b) => this.workers.update(b));
      // Results are handled concurrently (the bus awaits a handler before the next message):
      // outputs of many jobs come home in parallel and their publications fold into one.
      bus.subscribe(bus.subject('driver', this.key, 'result'), (b, reply) => void this.onResult(b).then(reply));
      await bus.flush();
      bus.publish(bus.subject('worker', 'ping'), {});
      await queue;
      log.debug('make starts at', Math.round(performance.now()), 'ms');
      this.watchdog = setInterval(() => this.checkWorkers(), WATCHDOG_MS);
      const status = await this.runMake();
      return {
        status, jobs: this.summary.jobs, jobsPerWorker: Object.fromEntries(this.summary.perWorker), local: this.summary.local, rerun: this.summary.rerun,
        outputBytes: this.summary.outputBytes, wallMs: performance.now() - this.startedMs, generation: this.publisher.current, undeclared: this.undeclared(), jobMs: this.summary.jobMs,
        publishMs: this.summary.publishMs, cpuMs: cpuMs(),
      };
    } finally {
      await queue.catch(() => undefined); // its directory is made (or never will be) before close() removes it
      await this.close();
    }
  }

  /** The FIFO shims announce themselves on, held open read-write so it never reports end-of-file. */
  private async openQueue(): Promise<void> {
    this.runDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dftfs-drive-'));
    this.shim = await writeShim(this.runDir);
    const queue = path.join(this.runDir, 'queue');
    await new Promise<void>((resolve, reject) => spawn('mkfifo', ['-m', '600', queue]).on('exit', (c) => (c === 0 ? resolve() : reject(new DftfsError('ERR_DFTFS_IO', `mkfifo ${queue} failed`)))));
    this.fifoFd = fs.openSync(queue, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    this.fifo = new net.Socket({ fd: this.fifoFd, readable: true, writable: false });
    readline.createInterface({ input: this.fifo }).on('line', (line) => {
      const pid = Number(line.trim());
      if (Number.isInteger(pid) && pid > 0) void this.onShim(pid);
    });
  }

  private runMake(): Promise<number> {
    const args = [`SHELL=${this.shim}`, ...MAKE_EVALS.map((e) => `--eval=${e}`), ...this.o.makeArgs];
    return new Promise((resolve, reject) => {
      const child = spawn(this.o.make ?? 'make', args, { cwd: this.o.dir, stdio: 'inherit', env: { ...process.env, DFTFS_DRIVE_DIR: this.runDir } });
      this.make = child;
      child.on('error', (err) => reject(new DftfsError('ERR_DFTFS_UNAVAILABLE', `could not run make: ${err.message}`, { hint: 'install GNU make (Debian package make)' })));
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
    });
  }

  /** A shim announced itself: build the job from /proc, run it, hand the shim its output and status. */
  private async onShim(pid: number): Promise<void> {
    const d = this.runDir;
    const t0 = performance.now();
    let status = 1;
    let stdout: Buffer = Buffer.alloc(0);
    let stderr: Buffer = Buffer.alloc(0);
    this.shims.add(pid);
    try {
      const job = this.jobFromProc(pid);
      if (job) log.debug('job', job.id, 'read from /proc at', Math.round(performance.now() - t0), 'ms', job.target);
      const r = job ? await this.runJob(job) : await this.runLocalFromProc(pid);
      if (job) log.debug('job', job.id, 'status to make at', Math.round(performance.now() - t0), 'ms');
      status = r.status;
      stdout = Buffer.from(r.stdout, 'base64');
      stderr = Buffer.from(r.stderr, 'base64');
    } catch (err) {
      stderr = Buffer.from(`dftfs drive: ${(err as Error).message}\n`);
    }
    try {
      // Only non-empty output is written; the status line names the files the shim must print.
      await Promise.all([stdout.length && fsp.writeFile(path.join(d, `o.${pid}`), stdout), stderr.length && fsp.writeFile(path.join(d, `e.${pid}`), stderr)]);
      const fifo = path.join(d, `r.${pid}`);
      await writeFifo(fifo, `${status} ${stdout.length ? 'o' : ''}${stderr.length ? 'e' : ''}\n`);
      // The shim holds the FIFO open now (the write succeeded): its name can go.
      await fsp.unlink(fifo).catch(() => undefined);
      this.summary.jobMs.push(performance.now() - t0);
    } catch (err) {
      log.debug('shim', String(pid), 'gone:', (err as Error).message);
    } finally {
      this.shims.delete(pid);
    }
  }

  private procOf(pid: number): { argv: string[]; env: Record<string, string>; cwd: string } {
    // Read in place: /proc answers from memory, and through the thread pool these three reads
    // queued behind every output being brought home (8-40 ms per job under load, for microseconds).
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
    const cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
    const all = cmdline.split('\0').slice(0, -1);
    const at = all.indexOf(this.shim);
    const env: Record<string, string> = {};
    for (const kv of environ.split('\0')) {
      const i = kv.indexOf('=');
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    delete env.DFTFS_DRIVE_DIR;
    return { argv: all.slice(at + 1), env, cwd };
  }

  private jobFromProc(pid: number): Job | undefined {
    const p = this.procOf(pid);
    const rel = path.relative(this.o.dir, p.cwd);
    if (outsideRoot(rel)) return undefined; // outside the tree: run here
    const cwd = rel === '' ? '.' : rel.split(path.sep).join('/');
    const target = p.env.DFTFS_TARGET ?? '';
    const prereqs = (p.env.DFTFS_PREREQS ?? '').split(/\s+/).filter(Boolean);
    const norm = (n: string) => path.posix.normalize(path.posix.join(cwd, n));
    this.prereqsOf.set(norm(target), prereqs.map(norm));
    return { id: `${process.pid}-${++this.seq}`, attempt: 0, cwd, argv: p.argv, env: p.env, target, prereqs, generation: 0 };
  }

  private async runLocalFromProc(pid: number): Promise<Captured> {
    const p = this.procOf(pid);
    return this.runLocal(p.argv, p.env, p.cwd);
  }

  private runLocal(argv: string[], env: Record<string, string>, cwd: string): Promise<Captured> {
    this.summary.local++;
    this.dirty = true; // whatever it wrote must be published before the next job
    return runCaptured(argv, { cwd, env, maxBytes: LOCAL_OUTPUT_BYTES });
  }

  /** Sends a job to a worker (again, if one dies) until its result and outputs are home. */
  private async runJob(job: Job): Promise<JobResult | Captured> {
    this.summary.jobs++;
    if (this.dirty) {
      this.dirty = false;
      await this.publisher.publish();
    }
    job.generation = this.publisher.current;
    for (;;) {
      const tp = performance.now();
      let settle!: (r: JobResult) => void;
      const settled = new Promise<JobResult>((resolve) => { settle = resolve; });
      const worker = await this.pickWorker(job, settle);
      log.debug('job', job.id, 'offered to', worker ?? 'nobody', 'in', Math.round(performance.now() - tp), 'ms');
      if (this.interrupted) throw new DftfsError('ERR_DFTFS_CLOSED', `interrupted (${this.interrupted})`);
      if (!worker) {
        if (this.o.noLocal) throw new DftfsError('ERR_DFTFS_UNAVAILABLE', 'no worker is connected (and --no-local was given)');
        if (!this.warnedLocal) this.o.warn('no worker is connected: running jobs on the driver');
        this.warnedLocal = true;
        return this.runLocal(job.argv, job.env, path.join(this.o.dir, job.cwd));
      }
      const result = await settled;
      if (this.interrupted) throw new DftfsError('ERR_DFTFS_CLOSED', `interrupted (${this.interrupted})`);
      if (result.worker === '') {
        this.summary.rerun++;
        job.attempt++;
        continue; // the worker died: run it elsewhere
      }
      return result;
    }
  }

  /**
   * The live worker with a free slot that holds most of the job's input bytes; offers until one
   * takes it. The job is pending on a worker from the moment it is offered: the worker's result
   * can arrive right behind its acceptance (in the same read from NATS).
   */
  private async pickWorker(job: Job, resolve: (r: JobResult) => void): Promise<string | undefined> {
    const deadline = this.startedMs + FIRST_WORKER_WAIT_MS;
    const inputs = job.prereqs.map((p) => path.posix.normalize(path.posix.join(job.cwd, p)));
    const held = (host: string) => inputs.reduce((n, name) => {
      const h = this.heldOn.get(name);
      return h?.hosts.has(host) && this.publisher.entry(name)?.digest === h.digest ? n + h.size : n;
    }, 0);
    while (!this.interrupted) {
      // A job whose result came back no longer holds its slot (the worker freed it before reporting),
      // though its outputs are still on their way here: with make -j above the slots, the next job
      // runs while they land.
      const busy = new Map<string, number>();
      for (const p of this.pending.values()) if (!p.landing) busy.set(p.worker, (busy.get(p.worker) ?? 0) + 1);
      const candidates = this.workers.live().filter((w) => (busy.get(w.worker) ?? 0) < w.slots);
      const bytes = new Map(candidates.map((w) => [w.worker, held(w.host)]));
      candidates.sort((a, b) => bytes.get(b.worker)! - bytes.get(a.worker)! || (busy.get(a.worker) ?? 0) - (busy.get(b.worker) ?? 0) || Math.random() - 0.5);
      for (const w of candidates) {
        const { bus } = this.agent;
        const entry: Pending = { job, worker: w.worker, acceptedMs: performance.now(), resolve };
        this.pending.set(job.id, entry);
        // Counted as there from the offer on: the jobs make starts meanwhile (a wave of them)
        // follow this one while the answer is on its way.
        const added = this.fetchingOn(w.host, inputs);
        const ans = await bus.request(bus.subject('worker', w.key, 'job'), { job, driver: this.key }, OFFER_TIMEOUT_MS).catch(() => undefined);
        if (ans?.ok === true) {
          entry.acceptedMs = performance.now();
          return w.worker;
        }
        if (this.pending.get(job.id)?.resolve === resolve) this.pending.delete(job.id);
        for (const hosts of added) hosts.delete(w.host);
      }
      if (this.workers.live().length === 0 && performance.now() > deadline) return undefined;
      await this.workers.changed(WATCHDOG_MS);
    }
    return undefined;
  }

  /**
   * Records that `host` holds the files at `names` once its worker has fetched a job's
   * prerequisites; returns the host sets it was added to (to take it out again if the offer fails).
   */
  private fetchingOn(host: string, names: string[]): Array<Set<string>> {
    const added: Array<Set<string>> = [];
    for (const name of names) {
      const e = this.publisher.entry(name);
      if (e?.type !== 'reg' || !e.digest) continue;
      let h = this.heldOn.get(name);
      if (h?.digest !== e.digest) this.heldOn.set(name, (h = { digest: e.digest, size: e.size ?? 0, hosts: new Set() }));
      if (h.hosts.has(host)) continue;
      h.hosts.add(host);
      added.push(h.hosts);
    }
    return added;
  }

  /** A result sent by reference (see RESULT_MESSAGE_MAX_BYTES): fetched from its worker, verified by digest, checked like any other. */
  private async fetchResult(m: ResultRef): Promise<JobResult> {
    await this.agent.fetch(m.ref, m.addr ? { hints: [m.addr], hintsFirst: true } : {});
    const text = await fsp.readFile(this.agent.store.objectPath(m.ref.digest), 'utf8');
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new DftfsError('ERR_DFTFS_PROTOCOL', `malformed job message: the result of ${m.id} is not JSON`);
    }
    const r = parseJobResult(raw);
    if (r.id !== m.id || r.attempt !== m.attempt || r.worker !== m.worker) throw new DftfsError('ERR_DFTFS_PROTOCOL', `malformed job message: the object sent for ${m.id} holds another result`);
    return r;
  }

  private async onResult(raw: Record<string, unknown>): Promise<Record<string, unknown>> {
    let message: JobResult | ResultRef;
    try {
      message = raw.ref === undefined ? parseJobResult(raw) : parseResultRef(raw);
    } catch (err) {
      return refusal(err);
    }
    const p = this.pending.get(message.id);
    if (!p || p.landing || p.job.attempt !== message.attempt || p.worker !== message.worker) return { ok: false, stale: true };
    p.landing = true;
    // Its slot is free from now on (see pickWorker): a job make started beyond the slots goes there
    // at once, while this one's outputs come home.
    this.workers.wake();
    const tr = performance.now();
    try {
      const result = 'ref' in message ? await this.fetchResult(message) : message;
      await fetchOutputs(this.agent, result.outputs.filter((o) => this.isNewest(o, result.worker)), result.addr);
      // Results are kept for the end-of-build report: not the output bytes that came inside them.
      for (const o of result.outputs) if (o.type === 'reg') delete o.data;
      // One result at a time writes into the tree, and only changes newer than what it holds.
      const written = await this.treeWrites(async () => {
        const fresh = result.outputs.filter((o) => this.isNewest(o, result.worker));
        for (const o of fresh) this.lastChange.set(o.name, { worker: result.worker, seq: o.seq });
        return { fresh, ...await writeOutputs(this.agent, this.o.dir, fresh) };
      });
      for (const o of result.outputs) {
        if (o.type === 'deleted') continue;
        this.producedBy.set(o.name, p.job.target ? path.posix.normalize(path.posix.join(p.job.cwd, p.job.target)) : o.name);
        if (o.type === 'reg') this.heldOn.set(o.name, { digest: o.desc.digest, size: o.desc.size, hosts: new Set([result.host]) });
      }
      this.summary.outputBytes += written.bytes;
      log.debug('job', result.id, 'outputs home at', Math.round(performance.now() - tr), 'ms');
      // Only the outputs' paths changed: the TOC is updated there, not re-indexed.
      const { fresh, records } = written;
      const tp = performance.now();
      const generation = fresh.length ? (await this.publisher.publish({ names: fresh.map((o) => o.name), known: records })).generation : this.publisher.current;
      if (fresh.length) this.summary.publishMs.push(performance.now() - tp);
      log.debug('job', result.id, 'published at', Math.round(performance.now() - tr), 'ms');
      this.pending.delete(result.id);
      this.summary.perWorker.set(result.worker, (this.summary.perWorker.get(result.worker) ?? 0) + 1);
      this.results.push({ job: p.job, result });
      p.resolve(result);
      return { ok: true, generation };
    } catch (err) {
      // The result or its outputs could not be brought home (the worker vanished meanwhile, or
      // sent what does not check out): run the job again.
      log.debug('result of', message.id, 'failed:', (err as Error).message);
      this.pending.delete(message.id);
      p.resolve(noResult(message.id, message.attempt));
      return refusal(err);
    }
  }

  /**
   * False for a change of a path older than one already written from the same worker: jobs that
   * overlap on a worker each report what the others wrote meanwhile (a temp file between two of
   * their commands), and results arrive in any order.
   */
  private isNewest(o: Output, worker: string): boolean {
    const last = this.lastChange.get(o.name);
    return !last || last.worker !== worker || last.seq < o.seq;
  }

  /** Runs `fn` after every earlier call's has finished. */
  private treeWrites<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writing.then(fn);
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** Jobs of a worker that stopped beating (or forgot them) are run again elsewhere. */
  private checkWorkers(): void {
    for (const [id, p] of this.pending) {
      // A job whose outputs are on their way is settled by onResult: a fetch from a dead worker fails.
      if (!p.landing && this.workers.lostJob(p.worker, id, p.acceptedMs)) {
        log.debug('worker', p.worker, 'lost job', id);
        this.pending.delete(id);
        p.resolve(noResult(id, p.job.attempt));
      }
    }
  }

  /** Recipes that read a file another rule made without depending on it, even transitively. */
  private undeclared(): UndeclaredRead[] {
    const out: UndeclaredRead[] = [];
    const closure = (target: string): Set<string> => {
      const seen = new Set<string>();
      const stack = [...(this.prereqsOf.get(target) ?? [])];
      while (stack.length) {
        const n = stack.pop()!;
        if (seen.has(n)) continue;
        seen.add(n);
        stack.push(...(this.prereqsOf.get(n) ?? []));
      }
      return seen;
    };
    for (const { job, result } of this.results) {
      if (!result.alone) continue;
      const target = path.posix.normalize(path.posix.join(job.cwd, job.target));
      const deps = closure(target);
      for (const file of result.reads) {
        const producer = this.producedBy.get(file);
        if (!producer || producer === target || deps.has(file) || deps.has(producer)) continue;
        out.push({ target, file, producedBy: producer });
      }
    }
    return out;
  }

  /**
   * Ctrl-C or SIGTERM: make and the shims waiting for jobs get the signal (a terminal's Ctrl-C
   * already reached them; a SIGTERM to dftfs alone did not), no job is sent any more, and make
   * ends the way it does when interrupted: partial targets deleted, exit status 128+signal.
   * Jobs already running on workers finish there; their results are not taken.
   */
  interrupt(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.interrupted) return;
    this.interrupted = signal;
    this.o.warn(`${signal}: stopping make`);
    // make passes SIGTERM on to its children (the shims) itself; a shim killed first made make
    // report "wait: No child processes" and exit 2 instead of dying by the signal. SIGINT make
    // leaves to the terminal, which reaches the shims only when it came from one: they get it here.
    const makeRuns = this.make?.pid !== undefined && this.make.exitCode === null && this.make.signalCode === null;
    const targets = signal === 'SIGTERM' && makeRuns ? [this.make!.pid] : [this.make?.pid, ...this.shims];
    for (const pid of targets) {
      if (pid === undefined) continue;
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone.
      }
    }
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.resolve(noResult(id, p.job.attempt));
    }
  }

  private async close(): Promise<void> {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    clearInterval(this.watchdog);
    this.fifo?.destroy();
    if (this.runDir) await fsp.rm(this.runDir, { recursive: true, force: true });
    await this.agent?.close();
  }
}

/** CPU time of this process so far, ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** A result not taken, in the bus's error shape: the worker's request fails with this message. */
const refusal = (err: unknown) => ({ ok: false, error: { code: (err as DftfsError).code ?? 'ERR_DFTFS_IO', message: (err as Error).message } });

/** What a pending job resolves to when no worker will report it (lost, or the drive interrupted). */
const noResult = (id: string, attempt: number): JobResult => ({ id, attempt, worker: '', host: '', status: 1, stdout: '', stderr: '', outputs: [], reads: [], alone: false, ms: 0 });

/** Writes to a shim's reply FIFO without blocking a thread: retries until the shim has it open for reading. */
async function writeFifo(file: string, text: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      try {
        fs.writeSync(fd, text);
      } finally {
        fs.closeSync(fd);
      }
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 2));
    }
  }
}
