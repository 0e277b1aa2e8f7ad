/**
 * Parallel efficiency of `dftfs drive make`: a sleep-bound synthetic build of 64 rules × 0.5 s,
 * each reading a 4 MiB input (8 inputs shared by the rules) and writing an output, on 4 worker
 * mounts × 4 slots with make -j16, over loopback on one machine. Ideal time 64 × 0.5 / 16 = 2 s;
 * efficiency = ideal / measured (target ≥ 0.85). Measured is the wall time of the whole
 * `dftfs drive` run: driver start, first index, every job and every output brought home.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startNatsServer } from '../../src/bus/index.js';
import { BIN, startProc, stopProc } from '../lib/procs.js';
import { barChartSvg, machine, markdownTable, writeResult } from '../lib/report.js';

const RULES = 64;
const WORK_S = 0.5;
const WORKERS = 4;
const SLOTS = 4;
const INPUTS = 8;

export async function run(opts: { dir: string }): Promise<void> {
  const tree = path.join(opts.dir, 'tree');
  fs.mkdirSync(path.join(tree, 'in'), { recursive: true });
  for (let i = 0; i < INPUTS; i++) execFileSync('sh', ['-c', `head -c 4194304 /dev/urandom > ${tree}/in/in${i}.bin`]);
  const rules = Array.from({ length: RULES }, (_, i) => `out/r${i}.txt: in/in${i % INPUTS}.bin\n\t@mkdir -p out; sleep ${WORK_S}; cksum $< > $@`).join('\n');
  fs.writeFileSync(path.join(tree, 'Makefile'), `all: ${Array.from({ length: RULES }, (_, i) => `out/r${i}.txt`).join(' ')}\n${rules}\n`);
  const nats = await startNatsServer();
  const host = (id: string) => ['--nats', nats.url, '--cluster', 'bench', '--host-id', id, '--advertise', '127.0.0.1', '--home', path.join(opts.dir, `h-${id}`)];
  const workers: ChildProcess[] = [];
  try {
    for (let w = 0; w < WORKERS; w++) {
      fs.mkdirSync(path.join(opts.dir, `mnt${w}`));
      workers.push(await startProc([BIN, 'mount', path.join(opts.dir, `mnt${w}`), ...host(`w${w}`), '--slots', String(SLOTS)]));
    }
    const t0 = performance.now();
    const out = execFileSync(process.execPath, [BIN, 'drive', ...host('driver'), 'make', `-j${WORKERS * SLOTS}`], { cwd: tree, env: { ...process.env, DFTFS_SUMMARY_JSON: '1' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const wall = (performance.now() - t0) / 1000;
    const summary = JSON.parse(out.trim().split('\n').pop()!) as { status: number; local: number; jobsPerWorker: Record<string, number>; wallMs: number; jobMs: number[] };
    const jobMs = [...summary.jobMs].sort((a, b) => a - b);
    if (summary.status !== 0 || summary.local > 0) throw new Error(`build failed or ran locally: ${JSON.stringify(summary)}`);
    const ideal = (RULES * WORK_S) / (WORKERS * SLOTS);
    const table = markdownTable({
      columns: ['measure', 'value'],
      rows: [
        ['ideal time (s)', ideal],
        ['dftfs drive make -j16, wall of the whole run (s)', wall],
        ['**parallel efficiency** (ideal / measured; target ≥ 0.85)', ideal / wall],
        ['jobs per worker', Object.values(summary.jobsPerWorker).join(', ')],
        [`job time seen by make, median / max (ms), for ${WORK_S * 1000} ms of work`, `${jobMs[jobMs.length >> 1]!.toFixed(0)} / ${jobMs[jobMs.length - 1]!.toFixed(0)}`],
      ],
    });
    const md = `# Parallel efficiency of dftfs drive make (loopback, ${WORKERS} workers × ${SLOTS} slots)\n\nMachine: ${machine()}\n\nOne run. ` +
      `${RULES} rules × ${WORK_S} s of sleep, each reading a 4 MiB input (${INPUTS} inputs shared) and writing its checksum; ` +
      `one recipe line (one job) per rule. All processes share this machine's 2 cores; no link shaping.\n\n${table}\n`;
    const svg = barChartSvg('Sleep-bound build, 64 × 0.5 s on 16 slots (s)', 's', [
      { label: 'ideal', value: ideal },
      { label: 'dftfs drive make -j16', value: wall },
    ]);
    writeResult('make-parallel', md, { rules: RULES, workS: WORK_S, workers: WORKERS, slots: SLOTS, idealS: ideal, wallS: wall, summary }, svg);
    process.stdout.write(md);
  } finally {
    for (const w of workers) await stopProc(w);
    await nats.stop();
  }
}
