/**
 * What the size of the tree costs `dftfs drive make`: the 64-rule sleep-bound build of
 * make-parallel (4 worker mounts × 4 slots, make -j16, loopback), once in a tree of only its
 * inputs and once with FILES more files no rule reads (a source tree is mostly those). Every job's
 * outputs are published as a new TOC generation before make hears the job is done, so what a
 * generation costs the driver is paid once per job: the table shows it beside the wall time.
 */
import { startNatsServer } from '../../src/bus/index.js';
import type { ScenarioOptions } from '../run.js';
import { barChartSvg, machine, markdownTable, writeResult } from '../lib/report.js';
import { build, type Build, type Summary } from './make-parallel.js';

const WORK_S = 0.5;
const SLOTS_TOTAL = 16;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
const max = (xs: number[]) => Math.max(...xs);

export async function run(opts: ScenarioOptions): Promise<void> {
  const [files] = opts.args.ints('files', [20000]) as [number];
  const builds: Build[] = [{ rules: 64, jobs: SLOTS_TOTAL }, { rules: 64, jobs: SLOTS_TOTAL, extraFiles: files }];
  const nats = await startNatsServer();
  try {
    const results: Array<Build & { idealS: number; wallS: number; summary: Summary }> = [];
    for (const b of builds) {
      const { wall, summary } = await build(opts.dir, b, nats.url);
      results.push({ ...b, idealS: (b.rules * WORK_S) / SLOTS_TOTAL, wallS: wall, summary });
    }
    const table = markdownTable({
      columns: ['files in the tree beside the build\'s', 'wall (s)', 'parallel efficiency (ideal 2 s / wall)', 'job time seen by make, median / max (ms)', 'publication of a job\'s outputs, median / max (ms)', 'generations', 'driver CPU (s)'],
      rows: results.map((r) => [r.extraFiles ?? 0, r.wallS, r.idealS / r.wallS, `${median(r.summary.jobMs).toFixed(0)} / ${max(r.summary.jobMs).toFixed(0)}`,
        `${median(r.summary.publishMs).toFixed(1)} / ${max(r.summary.publishMs).toFixed(1)}`, r.summary.generation, r.summary.cpuMs / 1000]),
    });
    const md = `# What the tree's size costs dftfs drive make (loopback, 4 workers × 4 slots)\n\nMachine: ${machine()}\n\n` +
      `One run. The 64-rule build of make-parallel (0.5 s of sleep per rule, each reading a 4 MiB input and writing its checksum; make -j16), ` +
      `in a tree of only its inputs, then in the same tree with ${files.toLocaleString('en')} small files in directories of 100 that no rule reads. ` +
      `Each build has its own driver and four fresh worker mounts. A job's outputs are published as a new TOC generation before make hears that the job is done; ` +
      `the publication column is the time a job's result waited for that (outputs of jobs that finish together share one). The wall time includes the driver's first index of the tree.\n\n${table}\n`;
    const svg = barChartSvg('64-rule build on 16 slots: wall time (s)', 's', results.map((r) => ({ label: `${(r.extraFiles ?? 0).toLocaleString('en')} more files`, value: r.wallS })));
    writeResult('make-big-tree', md, { workS: WORK_S, files, builds: results }, svg);
    process.stdout.write(md);
  } finally {
    await nats.stop();
  }
}
