/**
 * Per-job overhead of `dftfs drive make`: 100 trivial recipes (`true`, no outputs) run one at a
 * time (-j1) on one worker mount, over loopback. Each job's time is measured by the driver from
 * the shim announcing itself to its status being handed back (target: median ≤ 15 ms). Also the
 * wall time of the same build with plain make, and with -j4 on 4 slots.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startNatsServer } from '../../src/bus/index.js';
import { BIN, startProc as start, stopProc as stop } from '../lib/procs.js';
import { barChartSvg, machine, markdownTable, writeResult } from '../lib/report.js';

const JOBS = 100;


const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

export async function run(opts: { dir: string }): Promise<void> {
  const tree = path.join(opts.dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'Makefile'), `T := $(foreach i,$(shell seq 1 ${JOBS}),t$(i))\nall: $(T)\n.PHONY: all $(T)\n$(T):\n\t@true\n`);
  fs.mkdirSync(path.join(opts.dir, 'mnt'));
  const nats = await startNatsServer();
  const host = (id: string) => ['--nats', nats.url, '--cluster', 'bench', '--host-id', id, '--advertise', '127.0.0.1', '--home', path.join(opts.dir, `h-${id}`)];
  const worker = await start([BIN, 'mount', path.join(opts.dir, 'mnt'), ...host('worker'), '--slots', '4']);
  try {
    const drive = (j: number) => {
      const t0 = performance.now();
      const out = execFileSync(process.execPath, [BIN, 'drive', ...host('driver'), 'make', `-j${j}`], { cwd: tree, env: { ...process.env, DFTFS_SUMMARY_JSON: '1' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const summary = JSON.parse(out.trim().split('\n').pop()!) as { jobMs: number[]; local: number; jobs: number };
      if (summary.local > 0) throw new Error('jobs ran on the driver: the worker was not seen');
      return { wall: (performance.now() - t0) / 1000, jobMs: summary.jobMs };
    };
    const serial = drive(1);
    const parallel = drive(4);
    const t0 = performance.now();
    execFileSync('make', ['-j1'], { cwd: tree, stdio: 'ignore' });
    const local = (performance.now() - t0) / 1000;
    const med = pct(serial.jobMs, 0.5);
    const table = markdownTable({
      columns: ['measure', 'value'],
      rows: [
        [`per-job time, median of ${JOBS} (ms) — target ≤ 15`, med],
        ['per-job time, 90th percentile (ms)', pct(serial.jobMs, 0.9)],
        [`drive make -j1, ${JOBS} jobs, wall (s, includes driver start and first index)`, serial.wall],
        [`drive make -j4 on 4 slots, wall (s)`, parallel.wall],
        ['plain make -j1, wall (s)', local],
      ],
    });
    const md = `# Per-job overhead of dftfs drive make (loopback, one worker)\n\nMachine: ${machine()}\n\nOne run. ` +
      `A job's time runs from the shim announcing itself to the driver handing back its status: building the job from /proc, ` +
      `the offer over NATS, the worker's generation check and spawn of /bin/sh, the result over NATS.\n\n${table}\n`;
    const svg = barChartSvg(`Per-job time of a trivial recipe (ms, ${JOBS} jobs)`, 'ms', [
      { label: 'median', value: med },
      { label: '90th percentile', value: pct(serial.jobMs, 0.9) },
      { label: 'target', value: 15 },
    ]);
    writeResult('make-overhead', md, { jobs: JOBS, jobMs: serial.jobMs, serialWallS: serial.wall, parallelWallS: parallel.wall, localWallS: local }, svg);
    process.stdout.write(md);
  } finally {
    await stop(worker);
    await nats.stop();
  }
}
