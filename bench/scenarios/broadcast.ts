/**
 * Broadcast of one big file from host 0 to N workers over shaped links, side by side:
 *
 * - dftfs: `dftfs bcast FILE --to h1,…,hN` on host 0 (agents already running on the workers);
 *   the time includes hashing the file at the origin. Each worker's host store is checked.
 * - NFS: nfs-ganesha on host 0; every worker copies the file with libnfs's `nfs-cp` at once.
 * - TakTuk `broadcast put` over ssh, its default deployment and `-d 1` (a chain).
 * - scp fan-out: host 0 runs one scp per worker, all at once.
 *
 * Every receiver's copy is checked with b3sum against the source after each system. The floor is
 * S/B: the file's size over one link's rate (each receiver must get the whole file).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ScenarioOptions } from '../run.js';
import { Cluster, HOST_DIR, floorSeconds, parseLinkRate, type SimHost } from '../lib/cluster.js';
import { comparisonTable, lineChartSvg, machine, markdownTable, seriesByWorkers, writeResult, type SystemRun } from '../lib/report.js';
import { machineCpuSeconds, measureSystem, timed, verifyAndRemove } from '../lib/measure.js';
import { TAKTUK_VARIANTS, dftfs, dftfsEnv, ensurePackages, nfsUrl, scpFanOut, startAgents, startGanesha, startNats, startSshd, storeObjectPath, taktukPut, tcpChain } from '../lib/systems.js';

const ALL_SYSTEMS = ['dftfs', 'tcp-chain', 'nfs', 'taktuk', 'taktuk-chain', 'scp'];
const log = (s: string) => process.stderr.write(`${s}\n`);

const b3 = async (h: SimHost, file: string) => (await h.exec(['b3sum', '--no-names', file])).stdout.trim();
const checkAndRemove = (workers: SimHost[], file: string, want: string, system: string) => verifyAndRemove(workers, file, want, system, b3);

export async function runAt(nWorkers: number, size: number, rate: string, systems: string[]): Promise<SystemRun[]> {
  const c = await Cluster.create({ hosts: nWorkers + 1, rate });
  const runs: SystemRun[] = [];
  try {
    const [origin, ...workers] = c.hosts as [SimHost, ...SimHost[]];
    fs.mkdirSync(origin.path('src'));
    await origin.exec(['sh', '-c', `head -c ${size} /dev/urandom > ${HOST_DIR}/src/big`]);
    const src = path.join(HOST_DIR, 'src', 'big');
    const want = await b3(origin, src);
    await startNats(c);

    if (systems.includes('dftfs')) {
      await startAgents(c, workers);
      const cpu0 = machineCpuSeconds();
      const [s, r] = await timed(() => origin.exec(dftfs('bcast', src, '--to', workers.map((w) => w.name).join(','), '--json'), { env: dftfsEnv(c, origin) }));
      const cpuSeconds = machineCpuSeconds() - cpu0;
      const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as { digest: string; seconds: number; phases: Record<string, number>; receivers: Array<{ host: string; how: string; seconds: number }> };
      await checkAndRemove(workers, storeObjectPath(result.digest), want, 'dftfs');
      runs.push({ system: 'dftfs', workers: nWorkers, seconds: s, cpuSeconds, detail: { transferSeconds: result.seconds, phases: result.phases, receivers: result.receivers } });
      log(`  dftfs: ${s.toFixed(2)} s, ${cpuSeconds.toFixed(2)} CPU-s (transfer ${result.seconds.toFixed(2)} s after the order)`);
    }
    if (systems.includes('tcp-chain')) {
      const dest = path.join(HOST_DIR, 'tcp-big');
      const send = await tcpChain(workers, src, dest, origin);
      await measureSystem(runs, 'tcp-chain', nWorkers, send, () => checkAndRemove(workers, dest, want, 'tcp-chain'));
    }
    if (systems.includes('nfs')) {
      await startGanesha(c, path.join(HOST_DIR, 'src'));
      const dest = path.join(HOST_DIR, 'nfs-big');
      await measureSystem(runs, 'nfs', nWorkers, () => Promise.all(workers.map((w) => w.exec(['nfs-cp', nfsUrl(c, 'big'), dest]))), () => checkAndRemove(workers, dest, want, 'nfs'));
    }
    const needSsh = systems.some((s) => s.startsWith('taktuk') || s === 'scp');
    const ssh = needSsh ? await startSshd(c) : '';
    for (const [system, extra] of TAKTUK_VARIANTS) {
      if (!systems.includes(system)) continue;
      const dest = path.join(HOST_DIR, 'tt-big');
      await measureSystem(runs, system, nWorkers, () => taktukPut(c, ssh, workers, extra, src, dest), () => checkAndRemove(workers, dest, want, system));
    }
    if (systems.includes('scp')) {
      const dest = path.join(HOST_DIR, 'scp-big');
      await measureSystem(runs, 'scp', nWorkers, () => scpFanOut(c, ssh, workers, src, dest), () => checkAndRemove(workers, dest, want, 'scp'));
    }
  } finally {
    await c.destroy();
  }
  return runs;
}

export async function run(opts: ScenarioOptions): Promise<void> {
  const counts = opts.args.ints('workers', [2, 4]);
  const size = opts.args.bytes('size', '200m');
  const rate = opts.args.str('rate', '400mbit');
  const systems = opts.args.list('systems', ALL_SYSTEMS);
  const name = opts.args.str('name', 'broadcast');
  const unknown = systems.filter((s) => !ALL_SYSTEMS.includes(s));
  if (unknown.length) throw new Error(`unknown systems ${unknown.join(', ')}; choose from ${ALL_SYSTEMS.join(', ')}`);
  ensurePackages(log);
  const bps = parseLinkRate(rate);
  const runs: SystemRun[] = [];
  for (const n of counts) {
    log(`broadcast ${size} B to ${n} workers at ${rate}`);
    runs.push(...await runAt(n, size, rate, systems));
  }
  const floor = () => floorSeconds(size, bps);
  const mib = (size / 2 ** 20).toFixed(0);
  const md = `# Broadcast of one ${mib} MiB file to N workers (simulated cluster, ${rate} per link)\n\nMachine: ${machine()}\n\n` +
    `One run per cell, all systems over the same shaped links (tc tbf on both directions of every host's link). ` +
    `Floor S/B = ${floor().toFixed(2)} s (each receiver must get the whole file through its own link). ` +
    `NFS is nfs-ganesha (NFSv4) read with libnfs's nfs-cp (this kernel has no NFS client); TakTuk and scp run over ssh. ` +
    `dftfs's time includes hashing the file at the origin. tcp-chain is the TCP floor, not a tool: the file pushed down a chain of plain TCP connections, every hop writing it to disk while forwarding it, with no hashing, framing or control plane, its receivers listening before the clock starts (bench/lib/tcp-chain.ts); it shows what TCP itself gets through these links. Every host is a namespace on this one 2-core machine, so CPU is shared by all receivers.\n\n` +
    `${markdownTable(comparisonTable(runs, floor))}\n`;
  const svg = lineChartSvg(`Broadcast of ${mib} MiB at ${rate} per link`, 'workers', 'seconds (last receiver done)', seriesByWorkers(runs, floor));
  writeResult(name, md, { machine: machine(), sizeBytes: size, rate, bitsPerSecond: bps, floorSeconds: floor(), runs }, svg);
  process.stdout.write(md);
}
