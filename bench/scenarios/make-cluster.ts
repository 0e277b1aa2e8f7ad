/**
 * `dftfs drive make` across the simulated cluster, against the same build run with make on the
 * driver's host alone (what a user without a cluster runs).
 *
 * The build: RULES rules, each reading its own 1 MiB input, doing WORK_S seconds of work (sleep:
 * every simulated host shares this machine's 2 cores, so CPU-bound work could not scale) and
 * writing a 256 KiB output. Host 0 holds the tree and runs `dftfs drive make -j(W·S)`; each of the
 * W worker hosts runs `dftfs mount --slots S`, so inputs cross the shaped links on open and
 * outputs cross them back before a rule counts as done. Baseline: `make -jS` on host 0.
 * Every output is checked (b3sum of the out/ tree) against the local build's before a time counts.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ScenarioOptions } from '../run.js';
import { Cluster, HOST_DIR, type SimHost } from '../lib/cluster.js';
import { comparisonTable, lineChartSvg, machine, markdownTable, seriesByWorkers, writeResult, type SystemRun } from '../lib/report.js';
import { measureSystem } from '../lib/measure.js';
import { driveMake, ensurePackages, startNats, startWorkerMounts, type DriveSummary } from '../lib/systems.js';
import { treeDigestCmd, writeTree } from '../lib/trees.js';

const log = (s: string) => process.stderr.write(`${s}\n`);

const INPUT_BYTES = 1024 * 1024;
const OUTPUT_KIB = 256;

function makefile(rules: number, workS: number): string {
  const outs = Array.from({ length: rules }, (_, i) => `out/r${i}.bin`);
  // Output: the input's first 256 KiB with its checksum: depends on the input, checkable.
  const rule = (i: number) => `out/r${i}.bin: in/in${i}.bin\n\t@mkdir -p out && sleep ${workS} && head -c ${OUTPUT_KIB * 1024} $< > $@.tmp && cksum $< >> $@.tmp && mv $@.tmp $@`;
  return `all: ${outs.join(' ')}\n\n${Array.from({ length: rules }, (_, i) => rule(i)).join('\n')}\n\nclean:\n\trm -rf out\n`;
}

async function runAt(nWorkers: number, slots: number, rules: number, workS: number, rate: string): Promise<SystemRun[]> {
  const c = await Cluster.create({ hosts: nWorkers + 1, rate });
  const runs: SystemRun[] = [];
  try {
    const [driver, ...workers] = c.hosts as [SimHost, ...SimHost[]];
    writeTree(driver.path('src'), { files: Array.from({ length: rules }, (_, i) => ({ rel: `in/in${i}.bin`, size: INPUT_BYTES })), symlinks: [] });
    fs.writeFileSync(driver.path('src/Makefile'), makefile(rules, workS));
    const src = path.join(HOST_DIR, 'src');
    const outDigest = async () => (await driver.exec(['sh', '-c', treeDigestCmd(path.join(src, 'out'))])).stdout.trim();
    const clean = () => driver.exec(['rm', '-rf', path.join(src, 'out')]);

    // The baseline first: its outputs are the reference.
    let want = '';
    await measureSystem(runs, `make -j${slots} on one host`, nWorkers, () => driver.exec(['make', '-s', '-C', src, `-j${slots}`]),
      async () => { want = await outDigest(); await clean(); });

    await startNats(c);
    await startWorkerMounts(c, workers, slots);
    let summary: DriveSummary | undefined;
    await measureSystem(runs, 'dftfs', nWorkers, async () => {
      summary = await driveMake(c, src, [`-j${nWorkers * slots}`]);
    }, async () => {
      const got = await outDigest();
      if (got !== want) throw new Error(`dftfs drive: outputs differ from the local build (${got} vs ${want})`);
      await clean();
    });
    runs.at(-1)!.detail = { jobsPerWorker: summary!.jobsPerWorker };
  } finally {
    await c.destroy();
  }
  return runs;
}

export async function run(opts: ScenarioOptions): Promise<void> {
  const counts = opts.args.ints('workers', [2, 4]);
  const slots = Number(opts.args.str('slots', '4'));
  const rules = Number(opts.args.str('rules', '48'));
  const workS = Number(opts.args.str('work', '0.5'));
  const rate = opts.args.str('rate', '400mbit');
  const name = opts.args.str('name', 'make-cluster');
  ensurePackages(log);
  const runs: SystemRun[] = [];
  for (const n of counts) {
    log(`make: ${rules} rules × ${workS} s on ${n} worker hosts × ${slots} slots at ${rate}`);
    runs.push(...await runAt(n, slots, rules, workS, rate));
  }
  const ideal = (n: number) => (rules * workS) / (n * slots);
  const table = comparisonTable(runs, ideal);
  table.columns[3] = 'time / ideal';
  const md = `# dftfs drive make across the simulated cluster (${rate} per link)\n\nMachine: ${machine()}\n\n` +
    `One run per cell. ${rules} rules, each reading its own 1 MiB input, ${workS} s of work (sleep), writing a ${OUTPUT_KIB} KiB output. ` +
    `dftfs: host 0 runs \`dftfs drive make -j(workers × ${slots})\`, each worker host \`dftfs mount --slots ${slots}\` (inputs fetched on ` +
    `open over the shaped links, outputs pushed back before a rule is done); the time is the whole drive run (index, publish, every job, ` +
    `every output home). Baseline: \`make -j${slots}\` on host 0 alone. Ideal = rules × work / (workers × ${slots}); "time / ideal" ` +
    `is 1 / parallel efficiency (target ≥ 0.85 efficiency, i.e. ≤ 1.18 here). Outputs are checked against the local build's.\n\n` +
    `There is no NFS row: this kernel has no NFS client to run make on an NFS mount (nfs-ganesha + libnfs cannot run a Makefile).\n\n` +
    `${markdownTable(table)}\n`;
  const svg = lineChartSvg(`${rules} × ${workS} s build`, 'worker hosts', 'seconds', [...seriesByWorkers(runs), { label: 'ideal', points: counts.map((n) => [n, ideal(n)]) }]);
  writeResult(name, md, { machine: machine(), rules, workS, slots, rate, runs }, svg);
  process.stdout.write(md);
}
