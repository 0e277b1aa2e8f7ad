/**
 * A whole tree from host 0 to N workers over shaped links: `--kind small` (5,000 × 4 KiB) or
 * `--kind mixed` (a source-tree-like mix, ~150 MiB), side by side:
 *
 * - dftfs: `dftfs serve` on host 0 (indexed before the clock starts, as NFS exports before it);
 *   every worker runs `dftfs get . DEST` (a copy of the tree, modes and times kept) at once.
 * - dftfs-mount: each worker starts `dftfs mount` and copies the mount with `cp -a`. Time: from
 *   the mounts' start to the last copy done (the mount's start-up is counted).
 * - NFS: nfs-ganesha on host 0; each worker copies the export with nfs-tree (libnfs, one process).
 * - TakTuk `broadcast put` of the directory, default and `-d 1`; scp -r fan-out from host 0.
 *
 * Every worker's copy is checked (digest of every file's path and bytes) against the source.
 */
import path from 'node:path';
import type { ScenarioOptions } from '../run.js';
import { Cluster, HOST_DIR, floorSeconds, fsNote, parseLinkRate, setAside, type SimHost } from '../lib/cluster.js';
import { comparisonTable, lineChartSvg, machine, markdownTable, seriesByWorkers, writeResult, type SystemRun } from '../lib/report.js';
import { hostPathOutside, measureSystem, timed, verifyAndRemove } from '../lib/measure.js';
import { TAKTUK_VARIANTS, buildNfsTree, dftfs, dftfsEnv, ensurePackages, scpFanOut, startGanesha, startNats, startSshd, taktukPut, tarSshFanOut } from '../lib/systems.js';
import { mixedShape, shapeBytes, smallFilesShape, treeDigestCmd, writeTree, type TreeShape } from '../lib/trees.js';

const ALL_SYSTEMS = ['dftfs', 'dftfs-mount', 'nfs', 'taktuk', 'taktuk-chain', 'scp', 'tar-ssh'];
const log = (s: string) => process.stderr.write(`${s}\n`);

const digestOf = async (h: SimHost, dir: string) => (await h.exec(['sh', '-c', treeDigestCmd(dir)])).stdout.trim();

const checkAndRemove = (workers: SimHost[], dir: string, want: string, system: string) => verifyAndRemove(workers, dir, want, system, digestOf);

async function runAt(nWorkers: number, shape: TreeShape, rate: string, systems: string[], nfsTree: string): Promise<SystemRun[]> {
  // Copies are set aside, not deleted, until the scenario ends (see setAside in ../lib/cluster.ts).
  const c = await Cluster.create({ hosts: nWorkers + 1, rate, deferDeletes: true });
  const runs: SystemRun[] = [];
  try {
    const [origin, ...workers] = c.hosts as [SimHost, ...SimHost[]];
    writeTree(origin.path('src'), shape);
    const src = path.join(HOST_DIR, 'src');
    const want = await digestOf(origin, src);
    await startNats(c);

    if (systems.includes('dftfs') || systems.includes('dftfs-mount')) {
      await origin.start(dftfs('serve', src), /^agent /m, { env: dftfsEnv(c, origin), timeoutMs: 120_000 });
    }
    if (systems.includes('dftfs')) {
      const dest = path.join(HOST_DIR, 'dftfs-get');
      await measureSystem(runs, 'dftfs', nWorkers, () => Promise.all(workers.map((w) => w.exec(dftfs('get', '.', dest), { env: dftfsEnv(c, w) }))), () => checkAndRemove(workers, dest, want, 'dftfs'));
      // The next system starts from empty host stores, as the baselines start from nothing.
      for (const w of workers) setAside(hostPathOutside(w, path.join(HOST_DIR, 'dftfs')));
    }
    if (systems.includes('dftfs-mount')) {
      const mnt = path.join(HOST_DIR, 'mnt');
      const copy = path.join(HOST_DIR, 'dftfs-copy');
      const per: Array<{ host: string; mountS: number; copyS: number }> = [];
      const [s] = await timed(() => Promise.all(workers.map(async (w) => {
        await w.exec(['mkdir', '-p', mnt]);
        const t0 = performance.now();
        await w.start(dftfs('mount', mnt, '--read-only'), /^mounted /m, { env: dftfsEnv(c, w) });
        const t1 = performance.now();
        await w.exec(['cp', '-a', `${mnt}/.`, copy]);
        per.push({ host: w.name, mountS: (t1 - t0) / 1000, copyS: (performance.now() - t1) / 1000 });
      })));
      await checkAndRemove(workers, copy, want, 'dftfs-mount');
      runs.push({ system: 'dftfs-mount', workers: nWorkers, seconds: s, detail: { perWorker: per } });
      log(`  dftfs-mount: ${s.toFixed(2)} s (${per.map((p) => `${p.host} mount ${p.mountS.toFixed(2)} + copy ${p.copyS.toFixed(2)}`).join(', ')})`);
    }
    if (systems.includes('nfs')) {
      const url = await startGanesha(c, src);
      const dest = path.join(HOST_DIR, 'nfs-copy');
      await measureSystem(runs, 'nfs', nWorkers, () => Promise.all(workers.map((w) => w.exec([nfsTree, 'copy', url, dest]))), () => checkAndRemove(workers, dest, want, 'nfs'));
    }
    const ssh = systems.some((s) => s.startsWith('taktuk') || s === 'scp' || s === 'tar-ssh') ? await startSshd(c) : '';
    for (const [system, extra] of TAKTUK_VARIANTS) {
      if (!systems.includes(system)) continue;
      const dest = path.join(HOST_DIR, 'tt');
      await measureSystem(runs, system, nWorkers, () => taktukPut(c, ssh, workers, extra, src, dest), () => checkAndRemove(workers, dest, want, system));
    }
    // scp -r follows symlinks (a symlinked directory arrives as a copy): only for trees without any.
    if (systems.includes('scp') && shape.symlinks.length === 0) {
      const dest = path.join(HOST_DIR, 'scp-copy');
      await measureSystem(runs, 'scp', nWorkers, () => scpFanOut(c, ssh, workers, src, dest, true), () => checkAndRemove(workers, dest, want, 'scp'));
    }
    if (systems.includes('tar-ssh')) {
      const dest = path.join(HOST_DIR, 'tar-copy');
      await measureSystem(runs, 'tar-ssh', nWorkers, () => tarSshFanOut(c, ssh, workers, src, dest), () => checkAndRemove(workers, dest, want, 'tar-ssh'));
    }
  } finally {
    await c.destroy();
  }
  return runs;
}

export async function run(opts: ScenarioOptions): Promise<void> {
  const kind = opts.args.str('kind', 'small');
  if (kind !== 'small' && kind !== 'mixed') throw new Error(`--kind is small or mixed, not ${kind}`);
  const counts = opts.args.ints('workers', [2, 4]);
  const rate = opts.args.str('rate', '400mbit');
  const systems = opts.args.list('systems', ALL_SYSTEMS);
  const files = Number(opts.args.str('files', '5000'));
  const shape = kind === 'small' ? smallFilesShape(files, 4096) : mixedShape(Number(opts.args.str('scale', '1')));
  const name = opts.args.str('name', kind === 'small' ? 'small-files' : 'mixed-tree');
  ensurePackages(log);
  const nfsTree = buildNfsTree();
  const bytes = shapeBytes(shape);
  const runs: SystemRun[] = [];
  for (const n of counts) {
    log(`${kind} tree (${shape.files.length} files, ${bytes} B) to ${n} workers at ${rate}`);
    runs.push(...await runAt(n, shape, rate, systems, nfsTree));
  }
  const floor = () => floorSeconds(bytes, parseLinkRate(rate));
  const what = kind === 'small' ? `${shape.files.length} files × ${shape.files[0]!.size} B` : `a mixed tree (${shape.files.length} files, ${(bytes / 2 ** 20).toFixed(0)} MiB)`;
  const md = `# ${what} to N workers (simulated cluster, ${rate} per link)\n\nMachine: ${machine()}\n\n` +
    `One run per cell, all systems over the same shaped links. Floor S/B = ${floor().toFixed(2)} s (file bytes only; ` +
    `per-file round trips make every system slower than that). dftfs: \`dftfs get . DEST\` on every worker at once ` +
    `(a copy with modes and times, from an agent started by the command); dftfs-mount: \`dftfs mount\` started on each worker then \`cp -a\` ` +
    `of the mount (mount start-up counted); NFS: nfs-ganesha (NFSv4), each worker copies with nfs-tree (libnfs, one process); ` +
    `TakTuk \`broadcast put\` of the directory; scp -r (trees without symlinks only: it copies what a symlink points to) and ` +
    `\`tar c | ssh host tar x\` from host 0 to every worker at once. All hosts share this 2-core machine. ` +
    `Each copy is checked, then set aside (renamed) until the run ends: deleting it would charge the next system for the deletions (see below). ` +
    `Systems run: ${systems.join(', ')} (\`--systems\`). ${fsNote()}\n\n` +
    `${markdownTable(comparisonTable(runs, floor))}\n`;
  const svg = lineChartSvg(`${what} at ${rate} per link`, 'workers', 'seconds (last worker done)', seriesByWorkers(runs, floor));
  writeResult(name, md, { machine: machine(), kind, files: shape.files.length, bytes, rate, floorSeconds: floor(), runs }, svg);
  process.stdout.write(md);
}
