/**
 * A real C project built by `dftfs drive make` across the simulated cluster, against make on the
 * driver's host alone: Lua 5.3.5, unmodified (the npm registry's `lua-src` package is the Lua
 * distribution; its integrity is checked). `make posix` recurses twice, compiles 35 objects, makes
 * a static library in two steps (`ar`, then `ranlib` on the same file) and links two programs
 * against it: compile and link, many objects, several levels of dependencies.
 *
 * Rows per worker count W (each host `dftfs mount --slots S`):
 *   - `make -j2` on host 0: what a user of this 2-core machine runs without a cluster;
 *   - `make -jW·S` on host 0: the same parallelism as the distributed build, on one host;
 *   - dftfs: `dftfs drive make -jW·S` on host 0, every compile and link on a worker's mount.
 * Every build's products (each .o, liblua.a, lua, luac) must be byte-identical to the first local
 * build's, and the distributed `lua` must run, before a time counts. Every simulated host shares
 * this machine's 2 cores, so compiling cannot get faster by spreading it: the distributed time
 * shows what the distribution costs, not what a cluster of real hosts gains.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ScenarioOptions } from '../run.js';
import { Cluster, HOST_DIR, type SimHost } from '../lib/cluster.js';
import { lineChartSvg, machine, markdownTable, seriesByWorkers, writeResult, type SystemRun } from '../lib/report.js';
import { measureSystem } from '../lib/measure.js';
import { registryEnv } from '../lib/procs.js';
import { driveMake, ensurePackages, startNats, startWorkerMounts, type DriveSummary } from '../lib/systems.js';

const log = (s: string) => process.stderr.write(`${s}\n`);

const LUA_PACKAGE = 'lua-src@5.3.5';
/** The registry's `dist.integrity` of lua-src 5.3.5 (`npm view lua-src dist.integrity`). */
const LUA_INTEGRITY = 'sha512-4oGalKq9RFs/14uHbkHgqd1FdJJiLuC5aScsmM7dMidM8AULhMUwbN+4z6RCXltNKrYB7JH+jAYYEAE9wSOb0w==';
/** What `make posix` produces, relative to the project: every product compared between builds. */
const PRODUCTS = 'src/*.o src/liblua.a src/lua src/luac';
/** The systems, named alike at every worker count (the plot draws one line per name). */
const LOCAL_2 = 'make -j2, one host';
const SAME_J = 'make -jW·S, one host';

/** The Lua tarball from the npm registry (kept in `dir` between runs), checked against its pinned integrity. */
function luaTarball(dir: string): string {
  const cache = path.join(dir, 'lua-src');
  fs.mkdirSync(cache, { recursive: true });
  let file = fs.readdirSync(cache).find((f) => f.endsWith('.tgz'));
  if (!file) {
    log(`fetching ${LUA_PACKAGE} from the npm registry`);
    const r = spawnSync('npm', ['pack', LUA_PACKAGE, '--pack-destination', cache, '--silent'], { encoding: 'utf8', env: registryEnv() });
    if (r.status !== 0) throw new Error(`npm pack ${LUA_PACKAGE} failed: ${r.stderr}`);
    file = r.stdout.trim().split('\n').pop()!;
  }
  const tgz = path.join(cache, file);
  const got = `sha512-${createHash('sha512').update(fs.readFileSync(tgz)).digest('base64')}`;
  if (got !== LUA_INTEGRITY) {
    fs.rmSync(tgz);
    throw new Error(`${tgz}: integrity ${got}, want ${LUA_INTEGRITY}`);
  }
  return tgz;
}

async function runAt(tgz: string, nWorkers: number, slots: number, rate: string): Promise<SystemRun[]> {
  const c = await Cluster.create({ hosts: nWorkers + 1, rate });
  const runs: SystemRun[] = [];
  try {
    const [driver, ...workers] = c.hosts as [SimHost, ...SimHost[]];
    fs.mkdirSync(driver.path('lua'));
    await driver.exec(['tar', 'xzf', tgz, '-C', path.join(HOST_DIR, 'lua'), '--strip-components', '1']);
    const project = path.join(HOST_DIR, 'lua');
    const digest = async () => (await driver.exec(['sh', '-c', `cd ${project} && b3sum ${PRODUCTS}`])).stdout;
    const clean = () => driver.exec(['make', '-s', '-C', project, 'clean']);
    const jobs = nWorkers * slots;
    let want = '';
    const check = (system: string) => async () => {
      const got = await digest();
      if (!want) want = got;
      else if (got !== want) throw new Error(`${system}: the build's products differ from the first local build's:\n${got}`);
      const run = await driver.exec([path.join(project, 'src', 'lua'), '-e', 'print(_VERSION, 6 * 7)']);
      if (run.stdout.trim() !== 'Lua 5.3\t42') throw new Error(`${system}: the lua it built printed ${JSON.stringify(run.stdout)}`);
      await clean();
    };
    const measure = (system: string, build: () => Promise<unknown>) => measureSystem(runs, system, nWorkers, build, check(system));

    // Local builds first: the first one's products are the reference.
    await measure(LOCAL_2, () => driver.exec(['make', '-s', '-C', project, '-j2', 'posix']));
    await measure(SAME_J, () => driver.exec(['make', '-s', '-C', project, `-j${jobs}`, 'posix']));

    await startNats(c);
    await startWorkerMounts(c, workers, slots);
    let summary: DriveSummary | undefined;
    await measure('dftfs', async () => {
      summary = await driveMake(c, project, ['-s', `-j${jobs}`, 'posix']);
    });
    runs.at(-1)!.detail = { ...runs.at(-1)!.detail, jobs: summary!.jobs, jobsPerWorker: summary!.jobsPerWorker };
  } finally {
    await c.destroy();
  }
  return runs;
}

export async function run(opts: ScenarioOptions): Promise<void> {
  const counts = opts.args.ints('workers', [2, 4]);
  const slots = Number(opts.args.str('slots', '2'));
  const rate = opts.args.str('rate', '400mbit');
  ensurePackages(log);
  const tgz = luaTarball(opts.dir);
  const runs: SystemRun[] = [];
  for (const n of counts) {
    log(`Lua 5.3.5, make posix: ${n} worker hosts × ${slots} slots at ${rate}`);
    runs.push(...await runAt(tgz, n, slots, rate));
  }
  const rows = runs.map((r) => {
    const base = runs.find((x) => x.workers === r.workers && x.system === LOCAL_2)!;
    const d = (r.detail ?? {}) as { jobs?: number; jobsPerWorker?: Record<string, number> };
    return [r.workers, r.system, `-j${r.system === LOCAL_2 ? 2 : r.workers * slots}`, r.seconds, r.seconds / base.seconds, r.cpuSeconds ?? '–',
      d.jobsPerWorker ? `${d.jobs} (${Object.values(d.jobsPerWorker).join(', ')})` : '–', 'yes'];
  });
  const table = markdownTable({
    columns: ['workers', 'system', 'make', 'time (s)', 'time / make -j2', 'CPU-seconds, whole machine', 'jobs on workers (per worker)', 'products identical to the local build'],
    rows,
  });
  const md = `# A real C project (Lua 5.3.5) built by dftfs drive make across the simulated cluster (${rate} per link)\n\nMachine: ${machine()}\n\n` +
    `One run per cell. The project is Lua 5.3.5 as distributed (npm package \`lua-src\`, integrity checked), built with its own Makefile: ` +
    `\`make posix\` recurses twice, compiles 35 objects, builds liblua.a (\`ar\`, then \`ranlib\` on the same file) and links \`lua\` and \`luac\`. ` +
    `dftfs: host 0 runs \`dftfs drive make -j(workers × ${slots}) posix\`, each worker host \`dftfs mount --slots ${slots}\`; recursive make stays ` +
    `on the driver, every compile and link runs on a worker's mount, and a rule is done once its products are on host 0. ` +
    `Baselines on host 0 alone: \`make -j2\` (this machine's cores) and \`make -j(workers × ${slots})\` (the distributed build's parallelism). ` +
    `Every build's products (each .o, liblua.a, lua, luac) are checked byte for byte against the first local build's, and the built \`lua\` is run. ` +
    `"CPU-seconds" is the CPU time the whole machine spent during the build (/proc/stat, steal excluded), every process and the kernel included.\n\n` +
    `All simulated hosts share this machine's 2 cores: compiling cannot get faster by spreading it here, so the distributed time shows ` +
    `the cost of distributing (fetching sources and headers through the mounts, shipping objects home, the job protocol), ` +
    `not what a cluster of real hosts gains.\n\n${table}\n`;
  const svg = lineChartSvg('Lua 5.3.5, make posix', 'worker hosts', 'seconds', seriesByWorkers(runs));
  writeResult('make-c-project', md, { machine: machine(), project: LUA_PACKAGE, slots, rate, runs }, svg);
  process.stdout.write(md);
}
