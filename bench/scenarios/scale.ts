/**
 * Scale mode: the control plane with many agents and a 100,000-file TOC.
 *
 * Host 0 runs nats-server (with its monitoring port) and the driver (`dftfs serve` of the tree);
 * the other hosts run the followers: `dftfs mount` processes, several per host, each an agent of
 * its own sharing its host's store. Measured per agent count:
 *
 * - join: from starting the followers to every one mounted at the tree's generation;
 * - TOC apply: a file is added to the tree and the driver is sent SIGHUP; the time from the
 *   driver's announcement of the new generation to the last follower applying it (each mount
 *   prints "generation N applied" when its view changes);
 * - NATS messages per object per host while every follower reads the same files (small ones
 *   straight from the TOC's origin, large ones through discovery): the server's in_msgs and
 *   out_msgs (deliveries) from its /varz, divided by objects × follower hosts;
 * - the driver's peak RSS (VmHWM) and the largest follower's.
 *
 * Targets (issue 6): messages per object per host O(1) (not growing with agents), every agent
 * applies a new generation within 2 s, driver peak RSS ≤ 300 MB.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { ScenarioOptions } from '../run.js';
import { Cluster, HOST_DIR, type SimHost } from '../lib/cluster.js';
import { lineChartSvg, machine, markdownTable, writeResult } from '../lib/report.js';
import { dftfs, dftfsEnv, ensurePackages, natsVarz, startNats } from '../lib/systems.js';
import { smallFilesShape, writeTree } from '../lib/trees.js';

const log = (s: string) => process.stderr.write(`${s}\n`);

/** Files above the direct-fetch size go through discovery (`who`); these exercise it. */
const BIG_FILE_BYTES = 1024 * 1024;

export interface Phase {
  /** Files read through every mount. */
  read: number;
  /** Objects that landed in the follower hosts' stores, summed over hosts (a read prefetches its directory's small files). */
  fetched: number;
  seconds: number;
  inPerObjectHost: number;
  outPerObjectHost: number;
}

export interface ScaleRun {
  agents: number;
  hosts: number;
  files: number;
  indexSeconds: number;
  joinSeconds: number;
  reindexSeconds: number;
  applySeconds: number;
  applyMsgs: { in: number; out: number };
  /** Messages per second with every follower idle (heartbeats), subtracted from the read phases. */
  background: { inPerSecond: number; outPerSecond: number };
  small: Phase;
  big: Phase;
  driverPeakRssMB: number;
  followerPeakRssMB: number;
}

/** Peak resident set (VmHWM) of a process, in MB. */
function peakRssMB(pid: number | undefined): number {
  if (!pid) return NaN;
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Objects in a host's store (the harness sees the host's private directory). */
function storeObjects(h: SimHost): number {
  const dir = h.path('dftfs/store/objects');
  if (!fs.existsSync(dir)) return 0;
  return fs.readdirSync(dir).reduce((n, sub) => n + fs.readdirSync(path.join(dir, sub)).length, 0);
}

/** Resolves with performance.now() when `child` prints a line matching `re`. */
function when(child: ChildProcess, re: RegExp, timeoutMs: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${what}: not seen within ${timeoutMs / 1000} s`)), timeoutMs);
    const on = (b: Buffer) => {
      text = (text + b).slice(-4096);
      if (re.test(text)) {
        clearTimeout(timer);
        child.stdout!.off('data', on);
        child.stderr!.off('data', on);
        resolve(performance.now());
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
  });
}

/** Every mount of every host reads `rels` (all at once); returns the seconds. */
async function readEverywhere(hosts: SimHost[], mounts: string[][], rels: string[]): Promise<number> {
  const t0 = performance.now();
  await Promise.all(hosts.map((h, i) => {
    const script = mounts[i]!.map((m) => `(cd ${m} && cat ${rels.join(' ')} > /dev/null) &`).join('\n') + '\nwait';
    return h.exec(['sh', '-c', script]);
  }));
  return (performance.now() - t0) / 1000;
}

async function runAt(agents: number, followerHosts: number, files: number, bigFiles: number, readFiles: number, rate: string): Promise<ScaleRun> {
  const c = await Cluster.create({ hosts: followerHosts + 1, rate });
  try {
    const [driverHost, ...hosts] = c.hosts as [SimHost, ...SimHost[]];
    const shape = smallFilesShape(files, 256);
    shape.files.push(...Array.from({ length: bigFiles }, (_, i) => ({ rel: `big/b${i}.bin`, size: BIG_FILE_BYTES })));
    log(`  writing ${files} + ${bigFiles} files`);
    writeTree(driverHost.path('src'), shape);
    await startNats(c);
    const src = path.join(HOST_DIR, 'src');

    const t0 = performance.now();
    const driver = await driverHost.start(dftfs('serve', src), /^agent /m, { env: dftfsEnv(c, driverHost), timeoutMs: 600_000 });
    const indexSeconds = (performance.now() - t0) / 1000;
    log(`  driver indexed and published in ${indexSeconds.toFixed(1)} s`);

    // Followers, spread evenly over the hosts.
    const mounts: string[][] = hosts.map(() => []);
    for (let k = 0; k < agents; k++) mounts[k % hosts.length]!.push(path.join(HOST_DIR, `mnt${k}`));
    const t1 = performance.now();
    const followers = (await Promise.all(hosts.map(async (h, i) => {
      await h.exec(['mkdir', '-p', ...mounts[i]!]);
      return Promise.all(mounts[i]!.map((m) => h.start(dftfs('mount', m, '--read-only', '--slots', '0'), /^mounted .*\(generation 0\)/m,
        { env: dftfsEnv(c, h), timeoutMs: 600_000 })));
    }))).flat();
    const joinSeconds = (performance.now() - t1) / 1000;
    log(`  ${agents} followers mounted at generation 0 in ${joinSeconds.toFixed(1)} s`);

    // A new generation: one file more, SIGHUP to the driver.
    const before = await natsVarz(c);
    fs.writeFileSync(driverHost.path('src/scale-marker'), 'generation 1\n');
    const applied = followers.map((f, k) => when(f, /generation 1 applied/, 600_000, `follower ${k}`));
    const announced = when(driver, /^generation 1 root/m, 600_000, 'driver re-index');
    const tHup = performance.now();
    driver.kill('SIGHUP');
    const tAnnounced = await announced;
    const tLast = Math.max(...await Promise.all(applied));
    const afterApply = await natsVarz(c);
    const reindexSeconds = (tAnnounced - tHup) / 1000;
    const applySeconds = (tLast - tAnnounced) / 1000;
    log(`  re-index ${reindexSeconds.toFixed(2)} s, every follower applied generation 1 ${applySeconds.toFixed(2)} s after the announcement`);
    for (const [i, h] of hosts.entries()) await h.exec(['test', '-f', path.join(mounts[i]![0]!, 'scale-marker')]);

    // Background: heartbeats of idle followers, measured over a quiet window.
    const idleMs = 5000;
    const q0 = await natsVarz(c);
    await new Promise((r) => setTimeout(r, idleMs));
    const q1 = await natsVarz(c);
    const background = { inPerSecond: (q1.in_msgs - q0.in_msgs) / (idleMs / 1000), outPerSecond: (q1.out_msgs - q0.out_msgs) / (idleMs / 1000) };

    // Objects: the same files read through every mount of every host. Messages are divided by the
    // objects that actually landed in the hosts' stores, after the background is taken out.
    const phase = async (rels: string[]): Promise<Phase> => {
      const objects0 = hosts.reduce((n, h) => n + storeObjects(h), 0);
      const a = await natsVarz(c);
      const seconds = await readEverywhere(hosts, mounts, rels);
      const b = await natsVarz(c);
      const fetched = hosts.reduce((n, h) => n + storeObjects(h), 0) - objects0;
      const per = (d: number, bg: number) => fetched ? Math.max(0, d - bg * seconds) / fetched : 0;
      return { read: rels.length, fetched, seconds, inPerObjectHost: per(b.in_msgs - a.in_msgs, background.inPerSecond), outPerObjectHost: per(b.out_msgs - a.out_msgs, background.outPerSecond) };
    };
    const small = await phase(Array.from({ length: readFiles }, (_, i) => shape.files[(i * 37) % files]!.rel));
    const bigRels = shape.files.slice(files).map((f) => f.rel);
    const big = bigRels.length ? await phase(bigRels) : { read: 0, fetched: 0, seconds: 0, inPerObjectHost: 0, outPerObjectHost: 0 };
    log(`  background ${background.inPerSecond.toFixed(1)} in / ${background.outPerSecond.toFixed(1)} out msgs/s; small: ${small.fetched} objects fetched, ` +
      `${small.inPerObjectHost.toFixed(2)} in / ${small.outPerObjectHost.toFixed(2)} out per object per host; big: ${big.inPerObjectHost.toFixed(2)} / ${big.outPerObjectHost.toFixed(2)}`);

    const run: ScaleRun = {
      agents, hosts: hosts.length, files: files + bigFiles, indexSeconds, joinSeconds, reindexSeconds, applySeconds,
      applyMsgs: { in: afterApply.in_msgs - before.in_msgs, out: afterApply.out_msgs - before.out_msgs },
      background, small, big,
      driverPeakRssMB: peakRssMB(driver.pid),
      followerPeakRssMB: Math.max(...followers.map((f) => peakRssMB(f.pid))),
    };
    log(`  driver peak RSS ${run.driverPeakRssMB.toFixed(0)} MB, largest follower ${run.followerPeakRssMB.toFixed(0)} MB`);
    return run;
  } finally {
    await c.destroy();
  }
}

export async function run(opts: ScenarioOptions): Promise<void> {
  const counts = opts.args.ints('agents', [8, 16, 32]);
  const followerHosts = Number(opts.args.str('hosts', '4'));
  const files = Number(opts.args.str('files', '100000'));
  const bigFiles = Number(opts.args.str('big', '20'));
  const readFiles = Number(opts.args.str('read', '200'));
  const rate = opts.args.str('rate', '1gbit');
  const name = opts.args.str('name', 'scale');
  ensurePackages(log);
  const runs: ScaleRun[] = [];
  for (const n of counts) {
    log(`scale: ${n} agents on ${followerHosts} hosts, a ${files}-file TOC, ${rate} per link`);
    runs.push(await runAt(n, followerHosts, files, bigFiles, readFiles, rate));
  }
  const f = (x: number, d = 2) => x.toFixed(d);
  const table = {
    columns: ['agents', 'hosts', 'TOC apply, last agent (s)', 'driver re-index (s)', 'join (s)', 'background msgs in / out per s', 'objects fetched (small, all hosts)',
      'msgs in / object / host (small)', 'deliveries / object / host (small)',
      'msgs in / object / host (large)', 'deliveries / object / host (large)', 'driver peak RSS (MB)', 'follower peak RSS (MB)'],
    rows: runs.map((r) => [r.agents, r.hosts, f(r.applySeconds), f(r.reindexSeconds), f(r.joinSeconds, 1), `${f(r.background.inPerSecond, 1)} / ${f(r.background.outPerSecond, 1)}`,
      r.small.fetched, f(r.small.inPerObjectHost), f(r.small.outPerObjectHost),
      f(r.big.inPerObjectHost), f(r.big.outPerObjectHost), f(r.driverPeakRssMB, 0), f(r.followerPeakRssMB, 0)]),
  };
  const md = `# Scale mode: ${counts.join(', ')} agents, a ${files}-file TOC (simulated cluster, ${rate} per link)\n\nMachine: ${machine()}\n\n` +
    `One run per row. Host 0: nats-server and the driver (\`dftfs serve\`); ${followerHosts} follower hosts, each running its share of the ` +
    `agents as \`dftfs mount --read-only\` processes (one agent each, one store per host). All of them share this machine's cores.\n\n` +
    `- *TOC apply*: a file is added and the driver gets SIGHUP; from the driver's announcement of generation 1 to the last mount printing ` +
    `"generation 1 applied". Target ≤ 2 s.\n` +
    `- *Messages per object per host*: nats-server's in_msgs (published) and out_msgs (deliveries) while every mount reads the same ` +
    `${readFiles} small files (256 B, fetched straight from the TOC's origin) and then ${bigFiles} large ones (1 MiB, found by discovery), ` +
    `divided by the objects that landed in the follower hosts' stores (summed over hosts: opening a small file prefetches its directory's ` +
    `small files, so far more objects move than files are read), after taking out the background: the messages per second of the same ` +
    `followers idle (heartbeats), measured over 5 s before the reads. Target: O(1), not growing with agents.\n` +
    `- *Peak RSS*: VmHWM of the driver process (target ≤ 300 MB) and of the largest follower.\n\n${markdownTable(table)}\n`;
  const svg = lineChartSvg(`Control plane vs agents (${files}-file TOC)`, 'agents', 'seconds / messages', [
    { label: 'TOC apply (s)', points: runs.map((r) => [r.agents, r.applySeconds]) },
    { label: 'deliveries/object/host, large', points: runs.map((r) => [r.agents, r.big.outPerObjectHost]) },
    { label: 'deliveries/object/host, small', points: runs.map((r) => [r.agents, r.small.outPerObjectHost]) },
  ]);
  writeResult(name, md, { machine: machine(), files, followerHosts, rate, runs }, svg);
  process.stdout.write(md);
}
