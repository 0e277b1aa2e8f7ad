/**
 * Metadata walk (find + stat of every entry) of a 20,000-file tree on the workers, all at once:
 *
 * - dftfs: `dftfs mount` on each worker, already up and at the tree's generation (the walk is
 *   what is timed); `find MOUNT -printf '%s %m %T@'` stats every entry, cold kernel caches.
 * - NFS: nfs-ganesha on host 0; `nfs-tree walk` (libnfs) on each worker reads every directory
 *   with the attributes READDIR returns, like a kernel client's READDIRPLUS: no GETATTR per entry.
 *
 * Target (issue 4): the dftfs walk ≤ 0.1× the NFS walk.
 */
import path from 'node:path';
import type { ScenarioOptions } from '../run.js';
import { Cluster, HOST_DIR, type SimHost } from '../lib/cluster.js';
import { comparisonTable, lineChartSvg, machine, markdownTable, seriesByWorkers, writeResult, type SystemRun } from '../lib/report.js';
import { timed } from '../lib/measure.js';
import { buildNfsTree, dftfs, dftfsEnv, ensurePackages, startGanesha, startNats } from '../lib/systems.js';
import { smallFilesShape, writeTree } from '../lib/trees.js';

const log = (s: string) => process.stderr.write(`${s}\n`);


async function runAt(nWorkers: number, files: number, rate: string, nfsTree: string): Promise<SystemRun[]> {
  const c = await Cluster.create({ hosts: nWorkers + 1, rate });
  const runs: SystemRun[] = [];
  const entries = files + Math.ceil(files / 100);
  try {
    const [origin, ...workers] = c.hosts as [SimHost, ...SimHost[]];
    writeTree(origin.path('src'), smallFilesShape(files, 16));
    const src = path.join(HOST_DIR, 'src');
    await startNats(c);

    await origin.start(dftfs('serve', src), /^agent /m, { env: dftfsEnv(c, origin), timeoutMs: 120_000 });
    const mnt = path.join(HOST_DIR, 'mnt');
    await Promise.all(workers.map(async (w) => {
      await w.exec(['mkdir', '-p', mnt]);
      await w.start(dftfs('mount', mnt, '--read-only'), /^mounted /m, { env: dftfsEnv(c, w) });
    }));
    const [s] = await timed(() => Promise.all(workers.map(async (w) => {
      const r = await w.exec(['sh', '-c', `find ${mnt}/ -mindepth 1 -printf '%s %m %T@\\n' | wc -l`]);
      if (Number(r.stdout.trim()) !== entries) throw new Error(`dftfs: ${w.name} saw ${r.stdout.trim()} entries, want ${entries}`);
    })));
    runs.push({ system: 'dftfs', workers: nWorkers, seconds: s });
    log(`  dftfs: ${s.toFixed(2)} s`);

    const url = await startGanesha(c, src);
    const [n] = await timed(() => Promise.all(workers.map(async (w) => {
      const r = await w.exec([nfsTree, 'walk', url]);
      if (!r.stdout.startsWith(`entries ${entries} `)) throw new Error(`nfs: ${w.name} saw ${r.stdout.trim()}, want ${entries} entries`);
    })));
    runs.push({ system: 'nfs', workers: nWorkers, seconds: n });
    log(`  nfs: ${n.toFixed(2)} s`);
  } finally {
    await c.destroy();
  }
  return runs;
}

export async function run(opts: ScenarioOptions): Promise<void> {
  const counts = opts.args.ints('workers', [1, 4]);
  const rate = opts.args.str('rate', '400mbit');
  const files = Number(opts.args.str('files', '20000'));
  const name = opts.args.str('name', 'metadata-walk');
  ensurePackages(log);
  const nfsTree = buildNfsTree();
  const runs: SystemRun[] = [];
  for (const n of counts) {
    log(`metadata walk of ${files} files on ${n} workers at ${rate}`);
    runs.push(...await runAt(n, files, rate, nfsTree));
  }
  const table = comparisonTable(runs, () => undefined);
  const md = `# Metadata walk of a ${files}-file tree (simulated cluster, ${rate} per link)\n\nMachine: ${machine()}\n\n` +
    `One run per cell; every worker walks at once, the time is the last worker's. dftfs: \`find\` with a stat of every entry on a ` +
    `\`dftfs mount\` already at the tree's generation (cold kernel caches). NFS: nfs-ganesha (NFSv4) walked with nfs-tree (libnfs), ` +
    `which uses the attributes READDIR returns (no GETATTR per entry, the kindest case for NFS). Target: dftfs ≤ 0.1× NFS, ` +
    `i.e. "time / dftfs time" of nfs ≥ 10.\n\n${markdownTable(table)}\n`;
  const svg = lineChartSvg(`Metadata walk of ${files} files`, 'workers walking at once', 'seconds', seriesByWorkers(runs));
  writeResult(name, md, { machine: machine(), files, entries: files + Math.ceil(files / 100), rate, runs }, svg);
  process.stdout.write(md);
}
