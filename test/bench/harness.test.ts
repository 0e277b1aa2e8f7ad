/**
 * The benchmark harness: topology plan and floor arithmetic, result tables, a real simulated
 * cluster built and torn down (also after its owner was SIGKILLed), and the smallest run of one
 * cluster scenario, so the harness cannot rot.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Cluster, HOST_DIR, PREFIX, WORK_ROOT, floorSeconds, parseLinkRate, planTopology, removeSetAside, setupCommands, tbfBurstBytes } from '../../bench/lib/cluster.js';
import { verifyAndRemove } from '../../bench/lib/measure.js';
import { comparisonTable, lineChartSvg, markdownTable, seriesByWorkers } from '../../bench/lib/report.js';
import { tempDir } from '../helpers.js';

const ourNamespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${PREFIX}-`));
/** Running, not a zombie waiting for a reaper (this sandbox's init may take its time). */
const alive = (pid: number) => {
  try { return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
};

test('link rates, the floor S/B and tbf buckets', () => {
  assert.equal(parseLinkRate('400mbit'), 400e6);
  assert.equal(parseLinkRate('1gbit'), 1e9);
  assert.equal(parseLinkRate('800kbit'), 800e3);
  assert.throws(() => parseLinkRate('400mb'), /400mbit/);
  // 200 MiB through a 400 Mbit/s link: 209715200 × 8 / 4e8 = 4.194304 s.
  assert.equal(floorSeconds(200 * 2 ** 20, 400e6), 4.194304);
  assert.equal(tbfBurstBytes(1e6), 64 * 1024);
  assert.equal(tbfBurstBytes(1e9), 500_000);
});

test('the topology plan: distinct names and addresses, both directions of every link shaped', () => {
  const t = planTopology(3);
  assert.deepEqual(t.hosts.map((h) => h.ip), ['10.77.0.1', '10.77.0.2', '10.77.0.3']);
  assert.equal(new Set(t.hosts.flatMap((h) => [h.netns, h.vethHost, h.vethSwitch])).size, 9);
  for (const h of t.hosts) assert.ok(h.vethHost.length <= 15 && h.vethSwitch.length <= 15, 'interface names fit IFNAMSIZ');
  const cmds = setupCommands(t, 400e6).map((c) => c.join(' '));
  for (const h of t.hosts) {
    assert.ok(cmds.includes(`ip netns exec ${h.netns} tc qdisc add dev eth0 root tbf rate 400000000bit burst 200000 latency 100ms`), `${h.name} upload shaped`);
    assert.ok(cmds.includes(`ip netns exec ${t.switchNs} tc qdisc add dev ${h.vethSwitch} root tbf rate 400000000bit burst 200000 latency 100ms`), `${h.name} download shaped`);
  }
  assert.throws(() => planTopology(0));
});

test('comparison table: ratios to the floor and to dftfs; plot has one line per system and the floor', () => {
  const runs = [
    { system: 'dftfs', workers: 4, seconds: 5 },
    { system: 'nfs', workers: 4, seconds: 20 },
    { system: 'dftfs', workers: 8, seconds: 6 },
    { system: 'nfs', workers: 8, seconds: 42 },
  ];
  const t = comparisonTable(runs, () => 4);
  assert.deepEqual(t.rows, [[4, 'dftfs', 5, 1.25, '–'], [4, 'nfs', 20, 5, 4], [8, 'dftfs', 6, 1.5, '–'], [8, 'nfs', 42, 10.5, 7]]);
  assert.match(markdownTable(t), /\| 8 \| nfs \| 42 \| 10\.500 \| 7 \|/);
  // Where runs measured the machine's CPU-seconds, a column shows them ('–' where one did not).
  const withCpu = comparisonTable([{ ...runs[0]!, cpuSeconds: 7.5 }, runs[1]!], () => 4);
  assert.equal(withCpu.columns.at(-1), 'machine CPU-s');
  assert.deepEqual(withCpu.rows, [[4, 'dftfs', 5, 1.25, '–', 7.5], [4, 'nfs', 20, 5, 4, '–']]);
  const series = seriesByWorkers(runs, () => 4);
  assert.deepEqual(series.map((s) => s.label), ['dftfs', 'nfs', 'floor S/B']);
  const svg = lineChartSvg('t', 'workers', 's', series);
  assert.equal((svg.match(/<path /g) ?? []).length, 3);
});

test('a real cluster: hosts reach each other over shaped links; teardown leaves nothing', { timeout: 60_000 }, async () => {
  const c = await Cluster.create({ hosts: 2, rate: '100mbit' });
  let serverPid = 0;
  try {
    const [h0, h1] = c.hosts as [NonNullable<(typeof c.hosts)[0]>, NonNullable<(typeof c.hosts)[0]>];
    assert.deepEqual(ourNamespaces().sort(), [`${PREFIX}-h0`, `${PREFIX}-h1`, `${PREFIX}-sw`]);
    const qdisc = (await h1.exec(['tc', 'qdisc', 'show', 'dev', 'eth0'])).stdout;
    assert.match(qdisc, /tbf .*rate 100Mbit/);
    // Each host has its own HOST_DIR.
    fs.writeFileSync(h0.path('who'), 'zero');
    fs.writeFileSync(h1.path('who'), 'one');
    assert.equal((await h1.exec(['cat', '/srv/dftfs-host/who'])).stdout, 'one');
    // A TCP byte stream from h0 to h1 across the bridge.
    const server = h1.spawn([process.execPath, '-e', `require('net').createServer((s) => { let n = 0; s.on('data', (b) => n += b.length); s.on('end', () => { console.log('got', n); process.exit(0); }); }).listen(5001, '${h1.ip}', () => console.log('listening'))`]);
    serverPid = server.pid!;
    await new Promise<void>((resolve) => server.stdout!.on('data', (b: Buffer) => { if (String(b).includes('listening')) resolve(); }));
    const got = new Promise<string>((resolve) => server.stdout!.on('data', (b: Buffer) => { if (String(b).includes('got')) resolve(String(b).trim()); }));
    await h0.exec([process.execPath, '-e', `const s = require('net').connect(5001, '${h1.ip}', () => { s.end(Buffer.alloc(1 << 20)); });`]);
    assert.equal(await got, `got ${1 << 20}`);
    // Host 1 cannot reach the machine's own network: only the cluster's subnet is routed.
    const route = (await h1.exec(['ip', 'route'])).stdout;
    assert.doesNotMatch(route, /default/);
  } finally {
    await c.destroy();
  }
  assert.deepEqual(ourNamespaces(), []);
  assert.equal(alive(serverPid), false);
});

test('deferred deletes: a checked copy and the destroyed hosts are set aside, deleted only by removeSetAside', { timeout: 60_000 }, async () => {
  const spent = `${WORK_ROOT}.spent`;
  const entries = () => (fs.existsSync(spent) ? fs.readdirSync(spent).length : 0);
  removeSetAside();
  const c = await Cluster.create({ hosts: 2, rate: '100mbit', deferDeletes: true });
  try {
    const h1 = c.hosts[1]!;
    fs.mkdirSync(h1.path('copy'));
    fs.writeFileSync(h1.path('copy/f'), 'bytes');
    const digest = async (h: typeof h1, p: string) => (await h.exec(['cat', `${p}/f`])).stdout;
    await assert.rejects(verifyAndRemove([h1], `${HOST_DIR}/copy`, 'other', 'sys', digest), /sys: h1's copy at .* is different/);
    await verifyAndRemove([h1], `${HOST_DIR}/copy`, 'bytes', 'sys', digest);
    assert.equal(fs.existsSync(h1.path('copy')), false, 'the copy left its place');
    assert.equal(entries(), 1, 'and was set aside, not deleted');
  } finally {
    await c.destroy();
  }
  assert.equal(fs.existsSync(WORK_ROOT), false);
  assert.equal(entries(), 2, 'the hosts\' directories are set aside too');
  removeSetAside();
  assert.equal(fs.existsSync(spent), false);
});

test('a run that was SIGKILLed leaves a cluster behind; the next run removes it first', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const script = path.join(dir, 'crash.mjs');
  const clusterJs = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../bench/lib/cluster.js');
  fs.writeFileSync(script, `import { Cluster } from ${JSON.stringify(clusterJs)};
const c = await Cluster.create({ hosts: 2, rate: '50mbit' });
const p = c.hosts[1].spawn(['sleep', '600']);
console.log('sleeper', p.pid);
setInterval(() => {}, 1000);
`);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const sleeper = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => { const m = /sleeper (\d+)/.exec(String(b)); if (m) resolve(Number(m[1])); });
    child.once('exit', (code) => reject(new Error(`crash script exited ${code}`)));
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.equal(ourNamespaces().length, 3, 'the killed run left its namespaces');
  assert.ok(alive(sleeper), 'and its processes');
  const c = await Cluster.create({ hosts: 1, rate: '50mbit' });
  try {
    assert.equal(alive(sleeper), false, 'the leftover process was ended');
    assert.deepEqual(ourNamespaces().sort(), [`${PREFIX}-h0`, `${PREFIX}-sw`]);
  } finally {
    await c.destroy();
  }
  assert.deepEqual(ourNamespaces(), []);
});

test('smallest broadcast run: dftfs and NFS move a file to one worker, results written', { timeout: 300_000 }, async (t) => {
  const out = tempDir(t);
  const bench = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../bench/run.js');
  const r = spawnSync(process.execPath, [bench, 'broadcast', '--workers', '1', '--size', '4m', '--rate', '200mbit', '--systems', 'dftfs,nfs', '--name', 'ci-broadcast'],
    { env: { ...process.env, DFTFS_BENCH_RESULTS: out }, encoding: 'utf8', timeout: 280_000 });
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(fs.readFileSync(path.join(out, 'ci-broadcast.json'), 'utf8')) as { runs: Array<{ system: string; seconds: number }>; floorSeconds: number };
  assert.deepEqual(json.runs.map((x) => x.system), ['dftfs', 'nfs']);
  for (const x of json.runs) assert.ok(x.seconds > json.floorSeconds, `${x.system} cannot beat the floor`);
  assert.match(fs.readFileSync(path.join(out, 'ci-broadcast.md'), 'utf8'), /\| 1 \| nfs \|/);
  assert.ok(fs.existsSync(path.join(out, 'ci-broadcast.svg')));
  assert.deepEqual(ourNamespaces(), []);
});
