/**
 * Parallel efficiency of `dftfs drive make`: a sleep-bound synthetic build of RULES rules × 0.5 s,
 * each reading a 4 MiB input (8 inputs shared by the rules) and writing an output, on 4 worker
 * mounts × 4 slots, over loopback on one machine. Ideal time RULES × 0.5 / 16 s; efficiency =
 * ideal / measured (target ≥ 0.85). Measured is the wall time of the whole `dftfs drive` run:
 * driver start, first index, every job and every output brought home. Three builds in one run:
 * the issue's 64 rules with make -j16 (one make job per slot); 256 rules, where the fixed start-up
 * weighs a quarter as much; and 64 rules with make -j20 (make keeps 4 jobs ready beyond the slots).
 * Each build has its own cluster: a fresh tree, driver and four fresh worker mounts.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startNatsServer } from '../../src/bus/index.js';
import type { ScenarioOptions } from '../run.js';
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
export async function build(dir: string, b: Build, natsUrl: string): Promise<{ wall: number; summary: Summary; tree: string }> {
  const name = `${b.rules}-j${b.jobs}${b.extraFiles ? `-x${b.extraFiles}` : ''}`;
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
  try {
    for (let w = 0; w < WORKERS; w++) {
      const mnt = path.join(dir, name, `mnt${w}`);
      fs.mkdirSync(mnt);
      workers.push(await startProc([BIN, 'mount', mnt, ...host(`w${w}`), '--slots', String(SLOTS)]));
    }
    const t0 = performance.now();
    out = execFileSync(process.execPath, [BIN, 'drive', ...host('driver'), 'make', `-j${b.jobs}`], { cwd: tree, env: { ...process.env, DFTFS_SUMMARY_JSON: '1' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    wall = (performance.now() - t0) / 1000;
  } finally {
    for (const w of workers) await stopProc(w);
  }
  const summary = JSON.parse(out.trim().split('\n').pop()!) as Summary;
  if (summary.status !== 0 || summary.local > 0) throw new Error(`build failed or ran locally: ${JSON.stringify(summary)}`);
  for (let i = 0; i < b.rules; i++) {
    const want = execFileSync('cksum', [`in/in${i % INPUTS}.bin`], { cwd: tree, encoding: 'utf8' });
    if (fs.readFileSync(path.join(tree, 'out', `r${i}.txt`), 'utf8') !== want) throw new Error(`out/r${i}.txt of the ${b.rules}-rule build is wrong`);
  }
  return { wall, summary, tree };
}

/** Wall time of a plain `make -jN` of the same tree on this machine (outputs removed first): the machine's own ceiling. */
function localMake(tree: string, jobs: number): number {
  fs.rmSync(path.join(tree, 'out'), { recursive: true, force: true });
  const t0 = performance.now();
  execFileSync('make', ['-s', `-j${jobs}`], { cwd: tree, stdio: 'ignore' });
  return (performance.now() - t0) / 1000;
}

export async function run(opts: ScenarioOptions): Promise<void> {
  const nats = await startNatsServer();
  try {
    const rows: Array<Array<string | number>> = [];
    const results: Array<Build & { idealS: number; wallS: number; localS: number; summary: Summary }> = [];
    for (const b of BUILDS) {
      const { wall, summary, tree } = await build(opts.dir, b, nats.url);
      const local = localMake(tree, b.jobs);
      const ideal = (b.rules * WORK_S) / (WORKERS * SLOTS);
      const jobMs = [...summary.jobMs].sort((x, y) => x - y);
      results.push({ ...b, idealS: ideal, wallS: wall, localS: local, summary });
      rows.push([b.rules, `-j${b.jobs}`, ideal, wall, ideal / wall, local, ideal / local, Object.values(summary.jobsPerWorker).join(', '), `${jobMs[jobMs.length >> 1]!.toFixed(0)} / ${jobMs[jobMs.length - 1]!.toFixed(0)}`]);
    }
    const table = markdownTable({
      columns: ['rules', 'make', 'ideal time (s)', 'dftfs drive, wall of the whole run (s)', '**parallel efficiency** (ideal / measured; target ≥ 0.85)', 'plain make on this machine, same -j (s)', 'its efficiency', 'jobs per worker', `job time seen by make, median / max (ms), for ${WORK_S * 1000} ms of work`],
      rows,
    });
    const md = `# Parallel efficiency of dftfs drive make (loopback, ${WORKERS} workers × ${SLOTS} slots)\n\nMachine: ${machine()}\n\nOne run, three builds, each with its own tree, driver and four fresh worker mounts. ` +
      `Rules × ${WORK_S} s of sleep, each reading a 4 MiB input (${INPUTS} inputs shared) and writing its checksum (checked against a local cksum); ` +
      `one recipe line (one job) per rule. The wall time counts the driver's start-up (process start, index, publication, finding the workers). ` +
      `With make -j equal to the slots, a slot idles while its job's outputs come home and make starts the next shim; with -j20, make has 4 more jobs ready. ` +
      `Plain make runs the same Makefile in the same tree afterwards, on this machine alone (no dftfs): what a 16-way sleep-bound build reaches here at all. ` +
      `All processes share this machine's 2 cores; no link shaping.\n\n${table}\n`;
    const svg = barChartSvg(`Sleep-bound build on ${WORKERS * SLOTS} slots: wall time (s)`, 's', results.flatMap((r) => [
      { label: `ideal, ${r.rules} rules`, value: r.idealS },
      { label: `dftfs, ${r.rules} rules, -j${r.jobs}`, value: r.wallS },
      { label: `plain make, ${r.rules} rules, -j${r.jobs}`, value: r.localS },
    ]));
    writeResult('make-parallel', md, { workS: WORK_S, workers: WORKERS, slots: SLOTS, builds: results }, svg);
    process.stdout.write(md);
  } finally {
    await nats.stop();
  }
}
