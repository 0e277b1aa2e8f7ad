/**
 * Peak memory of agents moving one 1 GiB file over loopback (target ≤ 150 MB: objects stream
 * through the store, never whole in memory). The serving agent (`dftfs serve`), a receiving
 * `dftfs get`, and a `dftfs mount` whose file is read through with cat; each process's VmHWM
 * (peak resident set) is read from /proc while it runs, until it exits or the read is done.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startNatsServer } from '../../src/bus/index.js';
import type { ScenarioOptions } from '../run.js';
import { BIN, startProc, stopProc } from '../lib/procs.js';
import { barChartSvg, machine, markdownTable, writeResult } from '../lib/report.js';

const TARGET_MB = 150;

/** VmHWM of a live process, in MB (10^6 bytes); 0 once it is gone. */
function peakMb(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? (Number(m[1]) * 1024) / 1e6 : 0;
  } catch {
    return 0;
  }
}

/** Polls a process's peak RSS until `done` settles; the highest reading is its peak. */
async function watchPeak(pid: number, done: Promise<unknown>): Promise<number> {
  let peak = 0;
  let finished = false;
  void done.finally(() => { finished = true; });
  while (!finished) {
    peak = Math.max(peak, peakMb(pid));
    await new Promise((r) => setTimeout(r, 20));
  }
  return Math.max(peak, peakMb(pid));
}

const exited = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', r)));

export async function run(opts: ScenarioOptions): Promise<void> {
  const mib = Number(opts.args.str('mib', '1024'));
  const tree = path.join(opts.dir, 'tree');
  fs.mkdirSync(tree);
  const file = path.join(tree, 'big.bin');
  execFileSync('sh', ['-c', `head -c ${mib * 1048576} /dev/urandom > ${file}`]);
  const nats = await startNatsServer();
  const host = (id: string) => ['--nats', nats.url, '--cluster', 'bench', '--host-id', id, '--advertise', '127.0.0.1', '--home', path.join(opts.dir, `h-${id}`)];
  const serve = await startProc([BIN, 'serve', tree, ...host('origin')]);
  let mount: ChildProcess | undefined;
  try {
    // dftfs get: one process that fetches the object into its store and links it out.
    const t0 = performance.now();
    const get = spawn(process.execPath, [BIN, 'get', 'big.bin', path.join(opts.dir, 'got.bin'), '--quiet', ...host('getter')], { stdio: 'ignore' });
    const getDone = exited(get);
    const [getPeak, serveAfterGet] = await Promise.all([watchPeak(get.pid!, getDone), watchPeak(serve.pid!, getDone)]);
    const getS = (performance.now() - t0) / 1000;
    if ((await getDone) !== 0) throw new Error('dftfs get failed');

    // dftfs mount: a reader streams the file through FUSE while the agent fetches it.
    const mnt = path.join(opts.dir, 'mnt');
    fs.mkdirSync(mnt);
    mount = await startProc([BIN, 'mount', mnt, '--read-only', ...host('mounter')], /^agent /m);
    const t1 = performance.now();
    const cat = spawn('sh', ['-c', `cat ${path.join(mnt, 'big.bin')} > /dev/null`], { stdio: 'ignore' });
    const catDone = exited(cat);
    const mountPeak = await watchPeak(mount.pid!, catDone);
    const mountS = (performance.now() - t1) / 1000;
    if ((await catDone) !== 0) throw new Error('reading the file through the mount failed');
    const servePeak = peakMb(serve.pid!);

    const rows: Array<[string, number, number]> = [
      ['dftfs get (receiving agent)', getPeak, getS],
      ['dftfs mount + cat (receiving agent, FUSE)', mountPeak, mountS],
      ['dftfs serve (sending agent), peak up to the end of the get', serveAfterGet, getS],
      ['dftfs serve, peak up to the end of the mount read', servePeak, mountS],
    ];
    const table = markdownTable({
      columns: ['process', `peak RSS (MB) — target ≤ ${TARGET_MB}`, 'transfer time (s)', 'MiB/s'],
      rows: rows.map(([n, mb, s]) => [n, mb, s, mib / s]),
    });
    const md = `# Agent peak memory moving one ${mib} MiB file (loopback)\n\nMachine: ${machine()}\n\nOne run. ` +
      `Peak RSS is VmHWM from /proc, read every 20 ms while the process runs; the serving agent's includes its start-up ` +
      `and its index of the file (hashing streams it in chunks).\n\n${table}\n`;
    const svg = barChartSvg(`Peak RSS moving ${mib} MiB (MB; target ${TARGET_MB})`, 'MB', [
      ...rows.map(([n, mb]) => ({ label: n.replace(/ \(.*/, ''), value: mb })),
      { label: 'target', value: TARGET_MB },
    ]);
    writeResult('agent-rss', md, { mib, targetMb: TARGET_MB, rows: rows.map(([name, peakMb, seconds]) => ({ name, peakMb, seconds })) }, svg);
    process.stdout.write(md);
  } finally {
    if (mount) await stopProc(mount);
    await stopProc(serve);
    await nats.stop();
  }
}
