/**
 * Metadata walk (find + stat of every entry) of a 20,000-file tree on the workers, all at once:
 *
 * - dftfs: `dftfs mount` on each worker, already up and at the tree's generation (the walk is
 *   what is timed); `find MOUNT -printf '%s %m %T@'` stats every entry, cold kernel caches.
 * - NFS: nfs-ganesha on host 0; `nfs-tree walk` (libnfs) on each worker reads every directory
 *   with the attributes READDIR returns, like a kernel client's READDIRPLUS: no GETATTR per entry.
 *
 * - libfuse 2 floor: bench/native/fuse-passthrough.c on each worker, over the origin's tree (all
 *   hosts share this machine's disk): a C filesystem doing one lstat per getattr, multi-threaded (as fuse-native
 *   runs libfuse) and single-threaded (-s). What any libfuse 2 filesystem pays per entry here, since
 *   libfuse 2 has no READDIRPLUS: one LOOKUP round trip per name.
 *
 * Target (issue 4): the dftfs walk ≤ 0.1× the NFS walk.
 */
import path from 'node:path';
import type { ScenarioOptions } from '../run.js';
import { Cluster, HOST_DIR, type SimHost } from '../lib/cluster.js';
import { comparisonTable, lineChartSvg, machine, markdownTable, seriesByWorkers, writeResult, type SystemRun } from '../lib/report.js';
import { timed } from '../lib/measure.js';
import { buildFusePassthrough, buildNfsTree, dftfs, dftfsEnv, ensurePackages, startGanesha, startNats } from '../lib/systems.js';
import { smallFilesShape, writeTree } from '../lib/trees.js';

const log = (s: string) => process.stderr.write(`${s}\n`);


/** Every worker walks MOUNT at once (find + stat of every entry); seconds of the last one. */
async function walkAll(workers: SimHost[], mnt: string, entries: number, label: string): Promise<number> {
  const [s] = await timed(() => Promise.all(workers.map(async (w) => {
    const r = await w.exec(['sh', '-c', `find ${mnt}/ -mindepth 1 -printf '%s %m %T@\\n' | wc -l`]);
    if (Number(r.stdout.trim()) !== entries) throw new Error(`${label}: ${w.name} saw ${r.stdout.trim()} entries, want ${entries}`);
  })));
  log(`  ${label}: ${s.toFixed(2)} s`);
  return s;
}

async function runAt(nWorkers: number, files: number, rate: string, nfsTree: string, passthrough: string): Promise<SystemRun[]> {
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
    runs.push({ system: 'dftfs', workers: nWorkers, seconds: await walkAll(workers, mnt, entries, 'dftfs') });

    // The libfuse 2 floor, over the origin's tree as the harness sees it (every host shares the machine's disk).
    const fpMnt = path.join(HOST_DIR, 'fp');
    for (const [system, extra] of [['libfuse2-c', []], ['libfuse2-c-single', ['-s']]] as const) {
      const fps = await Promise.all(workers.map(async (w) => {
        await w.exec(['mkdir', '-p', fpMnt]);
        return w.start([passthrough, origin.path('src'), fpMnt, ...extra], /^mounted/m);
      }));
      runs.push({ system, workers: nWorkers, seconds: await walkAll(workers, fpMnt, entries, system) });
      await Promise.all(fps.map((p) => new Promise<void>((resolve) => { p.once('exit', () => resolve()); p.kill('SIGTERM'); })));
    }

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
  const passthrough = buildFusePassthrough();
  const runs: SystemRun[] = [];
  for (const n of counts) {
    log(`metadata walk of ${files} files on ${n} workers at ${rate}`);
    runs.push(...await runAt(n, files, rate, nfsTree, passthrough));
  }
  const table = comparisonTable(runs, () => undefined);
  const md = `# Metadata walk of a ${files}-file tree (simulated cluster, ${rate} per link)\n\nMachine: ${machine()}\n\n` +
    `One run per cell; every worker walks at once, the time is the last worker's. dftfs: \`find\` with a stat of every entry on a ` +
    `\`dftfs mount\` already at the tree's generation (cold kernel caches). NFS: nfs-ganesha (NFSv4) walked with nfs-tree (libnfs), ` +
    `which uses the attributes READDIR returns (no GETATTR per entry, the kindest case for NFS). ` +
    `libfuse2-c: the floor of any libfuse 2 filesystem here, bench/native/fuse-passthrough.c (C, one lstat per getattr, over ` +
    `the origin's tree on this machine's disk), multi-threaded as fuse-native runs libfuse, and single-threaded (-single); libfuse 2 has no ` +
    `READDIRPLUS, so every walk through it pays one LOOKUP round trip per name. Target: dftfs ≤ 0.1× NFS, ` +
    `i.e. "time / dftfs time" of nfs ≥ 10.\n\n${markdownTable(table)}\n`;
  const svg = lineChartSvg(`Metadata walk of ${files} files`, 'workers walking at once', 'seconds', seriesByWorkers(runs));
  writeResult(name, md, { machine: machine(), files, entries: files + Math.ceil(files / 100), rate, runs }, svg);
  process.stdout.write(md);
}
