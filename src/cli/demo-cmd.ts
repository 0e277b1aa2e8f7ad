import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { defineCommand } from 'citty';
import { startNatsServer } from '../bus/index.js';
import { usageError } from '../errors.js';
import { digestBytes } from '../hash/index.js';
import { Driver } from '../make/index.js';
import type { CliContext } from './context.js';
import { formatSummary } from './drive-cmd.js';
import { runIndex } from './index-cmd.js';
import { createReporter, formatBytes } from './output.js';
import { ownPackage } from './package-root.js';

const { root: ROOT, bin: BIN } = ownPackage();
/** How long a worker may take to mount and announce itself. */
const WORKER_START_MS = 20_000;
/** How much of each worker's output the demo keeps, to show when the build fails. */
const LOG_TAIL_BYTES = 4096;
const tail = (s: string) => (s.length > LOG_TAIL_BYTES ? s.slice(-LOG_TAIL_BYTES) : s);

/** Every file of a tree with the digest of its bytes (and symlink targets), for comparing two builds. */
async function treeDigests(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string) => {
    for (const d of await fsp.readdir(path.join(root, rel), { withFileTypes: true })) {
      const name = rel ? `${rel}/${d.name}` : d.name;
      const full = path.join(root, name);
      if (d.isDirectory()) await walk(name);
      else if (d.isSymbolicLink()) out.set(name, `-> ${await fsp.readlink(full)}`);
      else if (d.isFile()) out.set(name, `${digestBytes(await fsp.readFile(full))} ${(await fsp.stat(full)).mode & 0o777}`);
    }
  };
  await walk('');
  return out;
}

async function storeBytes(home: string): Promise<{ objects: number; bytes: number }> {
  let objects = 0;
  let bytes = 0;
  const dir = path.join(home, 'store/objects');
  for (const sub of await fsp.readdir(dir).catch(() => [])) {
    for (const f of await fsp.readdir(path.join(dir, sub))) {
      objects++;
      bytes += (await fsp.stat(path.join(dir, sub, f))).size;
    }
  }
  return { objects, bytes };
}

function runMake(dir: string, jobs: number): Promise<number> {
  return new Promise((resolve) => {
    spawn('make', [`-j${jobs}`], { cwd: dir, stdio: 'ignore' }).on('exit', (code) => resolve(code ?? 1));
  });
}

export const createDemoCommand = (ctx: CliContext) => defineCommand({
  meta: {
    name: 'demo',
    description: 'The main job, on one machine: start nats-server, two workers (each its own host store and FUSE mount), and a driver on a fresh copy of Makefile.example; build it with dftfs drive make -j; check every output against a plain local make; print a summary; stop everything and unmount.',
  },
  args: {
    workers: { type: 'string', description: 'Worker mounts to start (default 2)', valueHint: 'N' },
    jobs: { type: 'string', alias: 'j', description: 'make -j (default 4)', valueHint: 'N' },
    keep: { type: 'boolean', description: 'Keep the demo directory (trees, stores) for a look afterwards' },
    quiet: { type: 'boolean', alias: 'q', description: 'Print only the summary' },
  },
  async run({ args }) {
    const out = createReporter(ctx.io, { quiet: args.quiet });
    const nWorkers = Number(args.workers ?? 2);
    const jobs = Number(args.jobs ?? 4);
    if (!Number.isInteger(nWorkers) || nWorkers < 0 || nWorkers > 16) throw usageError('--workers takes 0 to 16');
    if (!Number.isInteger(jobs) || jobs < 1 || jobs > 256) throw usageError('--jobs takes 1 to 256');
    const say = (s: string) => ctx.io.stdout.write(s + '\n');
    const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'dftfs-demo-'));
    const cluster = `demo-${randomBytes(3).toString('hex')}`;
    const children: ChildProcess[] = [];
    const nats = await startNatsServer();
    let status = 1;
    const stopAll = () => { for (const c of children) if (c.exitCode === null) c.kill('SIGTERM'); };
    process.on('SIGINT', stopAll);
    process.on('SIGTERM', stopAll);
    try {
      const tree = path.join(work, 'driver/tree');
      const local = path.join(work, 'local');
      for (const d of [tree, local]) {
        await fsp.mkdir(d, { recursive: true });
        await fsp.copyFile(path.join(ROOT, 'Makefile.example'), path.join(d, 'Makefile'));
      }
      say(`== dftfs demo in ${work}: nats-server at ${nats.url}, cluster ${cluster}`);
      const homes: string[] = [];
      const logs: string[] = [];
      await Promise.all(Array.from({ length: nWorkers }, async (_, i) => {
        const home = path.join(work, `worker${i + 1}`);
        const mnt = path.join(home, 'mnt');
        homes.push(home);
        await fsp.mkdir(mnt, { recursive: true });
        const child = spawn(process.execPath, [BIN, 'mount', mnt, '--nats', nats.url, '--cluster', cluster, '--home', home, '--host-id', `worker${i + 1}`, '--advertise', '127.0.0.1', '--slots', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(child);
        await new Promise<void>((resolve, reject) => {
          let text = '';
          child.stdout!.on('data', (b) => { logs[i] = tail((logs[i] ?? '') + b); });
          child.stderr!.on('data', (b) => { logs[i] = tail((logs[i] ?? '') + b); });
          const timer = setTimeout(() => reject(new Error(`worker ${i + 1} did not start: ${text}`)), WORKER_START_MS);
          child.stdout!.on('data', (b) => { text += b; if (/^agent /m.test(text)) { clearTimeout(timer); resolve(); } });
          child.stderr!.on('data', (b) => { text += b; });
          child.once('exit', (code) => reject(new Error(`worker ${i + 1} exited with ${code}: ${text}`)));
        });
        say(`worker${i + 1}: FUSE mount at ${mnt}, 2 job slots`);
      }));
      say(`== dftfs drive make -j${jobs} (driver tree ${tree})`);
      const driver = new Driver({
        agent: { home: path.join(work, 'driver/home'), cluster, nats: nats.url, hostId: 'driver', advertise: '127.0.0.1' },
        dir: tree, makeArgs: [`-j${jobs}`], noLocal: nWorkers > 0,
        index: (generation) => runIndex(tree, { home: path.join(work, 'driver/home') }, ctx, createReporter(ctx.io, { quiet: true }), generation),
        warn: (m) => out.warn(m),
      });
      const summary = await driver.run();
      say('== local make for comparison');
      const t0 = performance.now();
      const localStatus = await runMake(local, jobs);
      const localMs = performance.now() - t0;
      const [a, b] = await Promise.all([treeDigests(tree), treeDigests(local)]);
      const differ = [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k));
      say('== summary');
      for (const l of formatSummary(summary)) say(l);
      for (const [i, home] of homes.entries()) {
        const s = await storeBytes(home);
        say(`  worker${i + 1} host store: ${s.objects} objects, ${formatBytes(s.bytes)} (inputs fetched plus outputs it made)`);
      }
      say(`  same-host copies hardlinked: each worker is its own host here, so none`);
      say(`local make: exit ${localStatus}, ${(localMs / 1000).toFixed(2)} s`);
      if (summary.status === 0 && localStatus === 0 && differ.length === 0) {
        say(`outputs identical: ${a.size} files in both trees`);
        status = 0;
      } else {
        say(`outputs DIFFER: ${differ.slice(0, 10).join(', ') || '(none)'}; drive exit ${summary.status}, local exit ${localStatus}`);
        for (const [i, text] of logs.entries()) if (text) ctx.io.stderr.write(`-- worker${i + 1} log (last ${LOG_TAIL_BYTES} bytes):\n${text}\n`);
      }
    } finally {
      process.off('SIGINT', stopAll);
      process.off('SIGTERM', stopAll);
      stopAll();
      await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
      await nats.stop();
      if (args.keep) say(`kept ${work}`);
      else fs.rmSync(work, { recursive: true, force: true });
    }
    ctx.exitCode = status;
  },
});
