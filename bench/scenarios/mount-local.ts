/**
 * The FUSE view on one machine, over loopback (no link shaping; the walk's comparison with NFS is
 * metadata-walk.ts, in the simulated cluster):
 * - metadata walk (find + stat of every entry) of a 20,000-file tree: dftfs mount vs the same tree
 *   on the local disk;
 * - sequential read of a 1 GiB file already in the host store: dftfs mount vs a bare fuse-native
 *   passthrough of the same bytes (target ≥ 0.8×);
 * - time to first and last byte of a 1 GiB file held only by another agent (loopback).
 * Every read runs in a child process (never from the process serving the mount).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startNatsServer } from '../../src/bus/index.js';
import { BIN, startProc as start, stopProc as stop } from '../lib/procs.js';
import { barChartSvg, machine, markdownTable, writeResult } from '../lib/report.js';

const PASSTHROUGH = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../lib/passthrough.js');
const FILES = 20_000;
const PER_DIR = 100;
const BIG_BYTES = 1024 * 1024 * 1024;


/** Seconds a shell command takes, run in a child process. */
function timed(cmd: string): number {
  const t0 = performance.now();
  execFileSync('sh', ['-c', cmd], { stdio: 'ignore' });
  return (performance.now() - t0) / 1000;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(opts: { dir: string }): Promise<void> {
  const d = (n: string) => path.join(opts.dir, n);
  const tree = d('tree');
  for (let i = 0; i < FILES; i++) {
    const sub = path.join(tree, `d${Math.floor(i / PER_DIR)}`);
    if (i % PER_DIR === 0) fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `f${i}.h`), `/* ${i} */\n`.padEnd(4096, '.'));
  }
  const bigDir = d('big');
  fs.mkdirSync(bigDir);
  execFileSync('sh', ['-c', `head -c ${BIG_BYTES} /dev/urandom > ${bigDir}/big.bin`]);
  for (const m of ['mnt', 'mnt2', 'pt']) fs.mkdirSync(d(m));
  const nats = await startNatsServer();
  const procs: ChildProcess[] = [];
  const host = (id: string) => ['--nats', nats.url, '--cluster', 'bench', '--host-id', id, '--advertise', '127.0.0.1', '--home', d(`h-${id}`)];
  try {
    // Metadata walk: the tree served by a driver, walked through a worker's mount and directly.
    procs.push(await start([BIN, 'serve', tree, ...host('driver')], /^agent /m));
    const m1 = await start([BIN, 'mount', d('mnt'), ...host('worker'), '--slots', '0'], /^agent /m);
    const walk = (root: string) => timed(`find ${root} -printf '%s %m %T@\\n' > /dev/null`);
    const onMount = [walk(d('mnt')), walk(d('mnt')), walk(d('mnt'))];
    const onDisk = [walk(tree), walk(tree), walk(tree)];
    await stop(m1);
    await stop(procs.pop()!);

    // 1 GiB held only by the driver: time to first byte and to last byte through a fresh mount.
    procs.push(await start([BIN, 'serve', bigDir, ...host('driver2')], /^agent /m));
    const m2 = await start([BIN, 'mount', d('mnt2'), ...host('worker2'), '--slots', '0'], /^agent /m);
    const ttfb = timed(`head -c 1 ${d('mnt2')}/big.bin > /dev/null`);
    const ttlb = timed(`cat ${d('mnt2')}/big.bin > /dev/null`);
    await stop(m2);
    // Now in worker2's host store: a fresh mount reads it from there, beside a passthrough of the file.
    const m3 = await start([BIN, 'mount', d('mnt2'), ...host('worker2'), '--slots', '0'], /^agent /m);
    const pt = await start([PASSTHROUGH, bigDir, d('pt')], /mounted/);
    const viaMount = timed(`dd if=${d('mnt2')}/big.bin of=/dev/null bs=1M`);
    const viaPassthrough = timed(`dd if=${d('pt')}/big.bin of=/dev/null bs=1M`);
    await stop(pt);
    await stop(m3);

    const mib = BIG_BYTES / 2 ** 20;
    const walkRatio = median(onMount) / median(onDisk);
    const readRatio = (mib / viaMount) / (mib / viaPassthrough);
    const table = markdownTable({
      columns: ['measure', 'dftfs mount', 'baseline', 'ratio', 'target'],
      rows: [
        [`metadata walk of ${FILES} files (s, median of 3)`, median(onMount), `${median(onDisk).toFixed(3)} (local disk)`, `${walkRatio.toFixed(2)}× local disk`, '≤ 0.1× NFS: see metadata-walk.md (simulated cluster)'],
        ['sequential read, 1 GiB in host store (MiB/s)', mib / viaMount, `${(mib / viaPassthrough).toFixed(0)} (fuse-native passthrough)`, `${readRatio.toFixed(2)}× passthrough`, '≥ 0.8×'],
        ['remote 1 GiB, time to first byte (s)', ttfb, '', '', ''],
        ['remote 1 GiB, time to last byte (s)', ttlb, '', `${(mib / ttlb).toFixed(0)} MiB/s over loopback`, ''],
      ],
    });
    const md = `# The FUSE view on one machine (loopback)\n\nMachine: ${machine()}\n\nOne run; every read in a child process; ` +
      `caches warm for the tree on disk, cold for each fresh mount. The walk's comparison with NFS runs in the simulated cluster: metadata-walk.md.\n\n${table}\n`;
    const svg = barChartSvg('1 GiB sequential read from the host store (MiB/s)', 'MiB/s', [
      { label: 'dftfs mount', value: mib / viaMount },
      { label: 'fuse-native passthrough', value: mib / viaPassthrough },
    ]);
    writeResult('mount-local', md, { files: FILES, walkMountS: onMount, walkDiskS: onDisk, readMountS: viaMount, readPassthroughS: viaPassthrough, ttfbS: ttfb, ttlbS: ttlb, bigBytes: BIG_BYTES }, svg);
    process.stdout.write(md);
  } finally {
    for (const p of procs) await stop(p);
    await nats.stop();
    for (const m of ['mnt', 'mnt2', 'pt']) { try { execFileSync('fusermount', ['-uz', d(m)], { stdio: 'ignore' }); } catch { /* not mounted */ } }
  }
}
