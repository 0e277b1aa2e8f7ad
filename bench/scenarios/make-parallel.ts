/**
 * Parallel efficiency of `dftfs drive make`: a sleep-bound synthetic build of RULES rules × 0.5 s,
 * each reading a 4 MiB input (8 inputs shared by the rules) and writing an output, on 4 worker
 * mounts × 4 slots, over loopback on one machine. Ideal time RULES × 0.5 / 16 s; efficiency =
 * ideal / measured (target ≥ 0.85). Measured is the wall time of the whole `dftfs drive` run:
 * driver start, first index, every job and every output brought home. Three builds in one run:
 * the issue's 64 rules with make -j16 (one make job per slot); 256 rules, where the fixed start-up
 * weighs a quarter as much; and 64 rules with make -j20 (make keeps 4 jobs ready beyond the slots).
 * Each build runs --runs times (3 by default; the median is reported), each run with its own
 * cluster: a fresh tree, driver and four fresh worker mounts. The machine's CPU time during each
 * build is reported beside plain make's.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startNatsServer } from '../../src/bus/index.js';
import type { ScenarioOptions } from '../run.js';
import { machineCpuSeconds } from '../lib/measure.js';
import { BIN, startProc, stopProc } from '../lib/procs.js';
import { barChartSvg, machine, markdownTable, writeResult } from '../lib/report.js';

const WORK_S = 0.5;
const WORKERS = 4;
const SLOTS = 4;
const INPUTS = 8;

export interface Build {
  rules: number;
  jobs: number;
  /** Files in the tree that no rule reads (a source tree is mostly those), in directories of 100. */
  extraFiles?: number;
}
const BUILDS: Build[] = [{ rules: 64, jobs: WORKERS * SLOTS }, { rules: 256, jobs: WORKERS * SLOTS }, { rules: 64, jobs: WORKERS * SLOTS + 4 }];

export interface Summary { status: number; local: number; jobsPerWorker: Record<string, number>; wallMs: number; jobMs: number[]; publishMs: number[]; generation: number; cpuMs: number }

/** A fresh tree of `rules` rules built by `dftfs drive make -jN` on fresh worker mounts, all in a cluster of its own. */
export async function build(dir: string, b: Build, natsUrl: string, run = 0): Promise<{ wall: number; cpu: number; summary: Summary; tree: string }> {
  const name = `${b.rules}-j${b.jobs}${b.extraFiles ? `-x${b.extraFiles}` : ''}${run ? `-${run}` : ''}`;
  const host = (id: string) => ['--nats', natsUrl, '--cluster', `bench-${name}`, '--host-id', id, '--advertise', '127.0.0.1', '--home', path.join(dir, name, `h-${id}`)];
  const tree = path.join(dir, name, 'tree');
  fs.mkdirSync(path.join(tree, 'in'), { recursive: true });
  for (let i = 0; i < INPUTS; i++) execFileSync('sh', ['-c', `head -c 4194304 /dev/urandom > ${tree}/in/in${i}.bin`]);
  for (let i = 0; i < (b.extraFiles ?? 0); i++) {
    const d = path.join(tree, 'src', `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, `f${i % 100}.c`), `/* file ${i} */\n`.repeat(1 + (i % 40)));
  }
  const rules = Array.from({ length: b.rules }, (_, i) => `out/r${i}.txt: in/in${i % INPUTS}.bin\n\t@mkdir -p out; sleep ${WORK_S}; cksum $< > $@`).join('\n');
  fs.writeFileSync(path.join(tree, 'Makefile'), `all: ${Array.from({ length: b.rules }, (_, i) => `out/r${i}.txt`).join(' ')}\n${rules}\n`);
  const workers: ChildProcess[] = [];
  let out: string;
  let wall: number;
  let cpu: number;
  try {
    for (let w = 0; w < WORKERS; w++) {
      const mnt = path.join(dir, name, `mnt${w}`);
      fs.mkdirSync(mnt);
      workers.push(await startProc([BIN, 'mount', mnt, ...host(`w${w}`), '--slots', String(SLOTS)]));
    }
    const cpu0 = machineCpuSeconds();
    const t0 = performance.now();
    out = execFileSync(process.execPath, [BIN, 'drive', ...host('driver'), 'make', `-j${b.jobs}`], { cwd: tree, env: { ...process.env, DFTFS_SUMMARY_JSON: '1' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    wall = (performance.now() - t0) / 1000;
    cpu = machineCpuSeconds() - cpu0;
  } finally {
    for (const w of workers) await stopProc(w);
  }
  const summary = JSON.parse(out.trim().split('\n').pop()!) as Summary;
  if (summary.status !== 0 || summary.local > 0) throw new Error(`build failed or ran locally: ${JSON.stringify(summary)}`);
  for (let i = 0; i < b.rules; i++) {
    const want = execFileSync('cksum', [`in/in${i % INPUTS}.bin`], { cwd: tree, encoding: 'utf8' });
    if (fs.readFileSync(path.join(tree, 'out', `r${i}.txt`), 'utf8') !== want) throw new Error(`out/r${i}.txt of the ${b.rules}-rule build is wrong`);
  }
  return { wall, cpu, summary, tree };
}

/** Wall time and machine CPU-seconds of a plain `make -jN` of the same tree on this machine (outputs removed first): the machine's own ceiling. */
function localMake(tree: string, jobs: number): { wall: number; cpu: number } {
  fs.rmSync(path.join(tree, 'out'), { recursive: true, force: true });
  const cpu0 = machineCpuSeconds();
  const t0 = performance.now();
  execFileSync('make', ['-s', `-j${jobs}`], { cwd: tree, stdio: 'ignore' });
  return { wall: (performance.now() - t0) / 1000, cpu: machineCpuSeconds() - cpu0 };
}

/** The run of median wall time (of an odd number of runs, the middle one). */
function medianRun<T extends { wall: number }>(runs: T[]): T {
  return [...runs].sort((x, y) => x.wall - y.wall)[runs.length >> 1]!;
}

export async function run(opts: ScenarioOptions): Promise<void> {
  const runs = opts.args.ints('runs', [3])[0]!;
  if (runs < 1) throw new Error('--runs must be at least 1');
  const nats = await startNatsServer();
  try {
    const rows: Array<Array<string | number>> = [];
    const results: Array<Build & { idealS: number; wallS: number; wallsS: number[]; cpuS: number; localS: number; localsS: number[]; localCpuS: number; summary: Summary }> = [];
    for (const b of BUILDS) {
      const dftfs: Array<{ wall: number; cpu: number; summary: Summary }> = [];
      const local: Array<{ wall: number; cpu: number }> = [];
      for (let r = 0; r < runs; r++) {
        const d = await build(opts.dir, b, nats.url, r);
        dftfs.push(d);
        local.push(localMake(d.tree, b.jobs));
      }
      const d = medianRun(dftfs);
      const l = medianRun(local);
      const ideal = (b.rules * WORK_S) / (WORKERS * SLOTS);
      const jobMs = [...d.summary.jobMs].sort((x, y) => x - y);
      const spread = (xs: number[]) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;
      results.push({ ...b, idealS: ideal, wallS: d.wall, wallsS: dftfs.map((x) => x.wall), cpuS: d.cpu, localS: l.wall, localsS: local.map((x) => x.wall), localCpuS: l.cpu, summary: d.summary });
      rows.push([b.rules, `-j${b.jobs}`, ideal, d.wall, spread(dftfs.map((x) => x.wall)), ideal / d.wall, l.wall, ideal / l.wall, d.cpu, l.cpu, Math.round(((d.cpu - l.cpu) / b.rules) * 1000),
        Object.values(d.summary.jobsPerWorker).join(', '), `${jobMs[jobMs.length >> 1]!.toFixed(0)} / ${jobMs[jobMs.length - 1]!.toFixed(0)}`]);
    }
    const table = markdownTable({
      columns: ['rules', 'make', 'ideal time (s)', `dftfs drive, wall of the whole run (s), median of ${runs}`, 'its range (s)', '**parallel efficiency** (ideal / median; target ≥ 0.85)',
        `plain make on this machine, same -j (s), median of ${runs}`, 'its efficiency', 'machine CPU-s, dftfs run', 'machine CPU-s, plain make', 'dftfs\'s extra CPU per job (ms)',
        'jobs per worker', `job time seen by make, median / max (ms), for ${WORK_S * 1000} ms of work`],
      rows,
    });
    const md = `# Parallel efficiency of dftfs drive make (loopback, ${WORKERS} workers × ${SLOTS} slots)\n\nMachine: ${machine()}\n\n${runs} runs of each build, each run with its own tree, driver and four fresh worker mounts; the row shows the run of median wall time. ` +
      `Rules × ${WORK_S} s of sleep, each reading a 4 MiB input (${INPUTS} inputs shared) and writing its checksum (checked against a local cksum); ` +
      `one recipe line (one job) per rule. The wall time counts the driver's start-up (process start, index, publication, finding the workers). ` +
      `With make -j equal to the slots, a slot idles while its job's outputs come home and make starts the next shim; with -j20, make has 4 more jobs ready. ` +
      `Plain make runs the same Makefile in the same tree after each dftfs run, on this machine alone (no dftfs): what a 16-way sleep-bound build reaches here at all. ` +
      `All processes share this machine's 2 cores; no link shaping. "Machine CPU-s" is the CPU time the whole machine spent during the build (/proc/stat, steal excluded): ` +
      `every process (driver, workers, their job spawners, nats-server, make and the recipes) and the kernel. The 2 cores offer 2 CPU-s per second of wall time, ` +
      `so where the CPU-s come near twice the wall time, the build waits for CPU, not for its sleeps.\n\n${table}\n`;
    const svg = barChartSvg(`Sleep-bound build on ${WORKERS * SLOTS} slots: wall time (s)`, 's', results.flatMap((r) => [
      { label: `ideal, ${r.rules} rules`, value: r.idealS },
      { label: `dftfs, ${r.rules} rules, -j${r.jobs}`, value: r.wallS },
      { label: `plain make, ${r.rules} rules, -j${r.jobs}`, value: r.localS },
    ]));
    writeResult('make-parallel', md, { workS: WORK_S, workers: WORKERS, slots: SLOTS, runs, builds: results }, svg);
    process.stdout.write(md);
  } finally {
    await nats.stop();
  }
}
