/**
 * `npm run bench -- <scenario> [--dir DIR] [scenario options]`: runs one benchmark scenario and
 * writes its table, JSON and plot under bench/results/. Cluster scenarios build the simulated
 * cluster (bench/lib/cluster.ts); Ctrl-C or SIGTERM tears it down before exiting.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { BenchArgs } from './lib/args.js';
import { activeCluster, removeSetAside } from './lib/cluster.js';
import { EXTRA_CA_CERTS } from './lib/procs.js';

export interface ScenarioOptions { dir: string; args: BenchArgs }
type Scenario = { run(opts: ScenarioOptions): Promise<void> };

const SCENARIOS: Record<string, { load: () => Promise<Scenario>; about: string }> = {
  'index-hash': { load: () => import('./scenarios/index-hash.js'), about: 'hashing a tree vs b3sum (local)' },
  reindex: { load: () => import('./scenarios/reindex.js'), about: 're-index after one change (local)' },
  'mount-local': { load: () => import('./scenarios/mount-local.js'), about: 'mount read speed vs a passthrough, TTFB/TTLB, metadata walk (loopback)' },
  'make-overhead': { load: () => import('./scenarios/make-overhead.js'), about: 'per-job overhead of dftfs drive (loopback)' },
  'agent-rss': { load: () => import('./scenarios/agent-rss.js'), about: 'peak RSS of agents moving one 1 GiB file: get, mount, serve (loopback) [--mib 1024]' },
  'make-parallel': { load: () => import('./scenarios/make-parallel.js'), about: 'parallel efficiency of a sleep-bound build (loopback)' },
  'make-big-tree': { load: () => import('./scenarios/make-big-tree.js'), about: 'the 64-rule build in a bare tree and in one of 20,000 more files: wall and publication per job (loopback) [--files 20000]' },
  broadcast: { load: () => import('./scenarios/broadcast.js'), about: 'one big file to N workers: dftfs vs NFS, TakTuk, scp (simulated cluster) [--workers 2,4 --size 200m --rate 400mbit --systems …]' },
  tree: { load: () => import('./scenarios/tree.js'), about: 'many small files or a mixed tree to N workers (simulated cluster) [--kind small|mixed --workers 2,4 --rate 400mbit]' },
  'make-cluster': { load: () => import('./scenarios/make-cluster.js'), about: 'dftfs drive make on N worker hosts vs make on one host (simulated cluster) [--workers 2,4 --slots 4 --rules 48 --work 0.5]' },
  'make-c-project': { load: () => import('./scenarios/make-c-project.js'), about: 'a real C project (Lua 5.3.5) by dftfs drive make on N worker hosts vs make on one host (simulated cluster) [--workers 2,4 --slots 2]' },
  scale: { load: () => import('./scenarios/scale.js'), about: 'control plane with many agents and a 100,000-file TOC (simulated cluster) [--agents 8,16,32 --hosts 4 --files 100000]' },
  'metadata-walk': { load: () => import('./scenarios/metadata-walk.js'), about: 'find + stat of a 20,000-file tree: dftfs mount vs NFS (simulated cluster) [--files 20000 --workers 1,4]' },
};

// No timed process pays for the build machines' CA bundle (see EXTRA_CA_CERTS); npm gets it back.
if (EXTRA_CA_CERTS) delete process.env.NODE_EXTRA_CA_CERTS;

const argv = process.argv.slice(2);
const name = argv.find((a) => !a.startsWith('-'));
if (!name || !(name in SCENARIOS)) {
  process.stderr.write(`usage: npm run bench -- <scenario> [--dir DIR] [options]\n\nscenarios:\n${Object.entries(SCENARIOS).map(([n, s]) => `  ${n.padEnd(14)} ${s.about}`).join('\n')}\n`);
  process.exit(2);
}
const args = new BenchArgs(argv);
const dir = args.has('dir') ? path.resolve(args.str('dir', '')) : fs.mkdtempSync(path.join(os.tmpdir(), 'dftfs-bench-'));
fs.mkdirSync(dir, { recursive: true });

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${sig}: tearing the simulated cluster down\n`);
    void (activeCluster()?.destroy() ?? Promise.resolve()).finally(() => { removeSetAside(); process.exit(130); });
  });
}

// A crashed run's set-aside copies go before anything is measured.
removeSetAside();
try {
  await (await SCENARIOS[name]!.load()).run({ dir, args });
} catch (err) {
  process.stderr.write(`bench ${name}: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  await activeCluster()?.destroy();
  removeSetAside();
  if (!args.has('dir')) fs.rmSync(dir, { recursive: true, force: true });
}
