import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { Agent, describeBytes } from '../../src/agent/index.js';
import { Bus, type NatsServerHandle } from '../../src/bus/index.js';
import { storeDir } from '../../src/config.js';
import type { Digest } from '../../src/hash/index.js';
import { parseJobResult } from '../../src/make/job.js';
import { ObjectStore } from '../../src/store/index.js';
import { hostArgs, natsFor, startDftfs, type Proc } from '../cluster-helpers.js';
import { b3sum, BIN, runDftfs, tempDir } from '../helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const MULTI_LEVEL = `
OBJS := a.o b.o c.o
all: app.txt sub-done

gen.h:
\tprintf '#define N 7\\n' > $@

$(OBJS:.o=.c): %.c:
\tprintf '#include "gen.h"\\nint $*(void) { return N; }\\n' > $@

%.o: %.c gen.h
\tcc -c $< -o $@

libx.a: $(OBJS)
\tar rcs $@ $^

app.txt: libx.a
\tmkdir -p out/deep
\tcksum libx.a > out/deep/sum.txt
\tln -sf deep/sum.txt out/link
\tcat out/deep/sum.txt $(OBJS:.o=.c) > $@

sub-done: gen.h
\t$(MAKE) -C sub
\ttouch $@
`;

const SUB = `
all: sub.out
sub.out: ../gen.h
\tcat ../gen.h > $@
\techo sub >> $@
`;

function project(dir: string, makefile = MULTI_LEVEL): void {
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'Makefile'), makefile);
  fs.writeFileSync(path.join(dir, 'sub/Makefile'), SUB);
}

/** Every file of a tree (not the Makefiles) with its content digest or link target. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const d of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const name = path.join(rel, d.name);
      const full = path.join(root, name);
      if (d.isDirectory()) walk(name);
      else if (d.isSymbolicLink()) out[name] = `-> ${fs.readlinkSync(full)}`;
      else if (!name.endsWith('Makefile')) out[name] = `${b3sum(full)} ${(fs.statSync(full).mode & 0o777).toString(8)}`;
    }
  };
  walk('');
  return out;
}

async function workers(t: TestContext, nats: NatsServerHandle, dir: string, n: number, slots: number): Promise<Proc[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => {
    const home = path.join(dir, `w${i}`);
    fs.mkdirSync(path.join(home, 'mnt'), { recursive: true });
    return startDftfs(t, ['mount', path.join(home, 'mnt'), ...hostArgs(nats, `w${i}`, home), '--slots', String(slots)]);
  }));
}

/** A temp dir, a nats-server and a tree holding one Makefile. */
async function singleMakefile(t: TestContext, makefile: (dir: string) => string) {
  const dir = tempDir(t, 'dftfs-drive');
  const nats = await natsFor(t);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'Makefile'), makefile(dir));
  return { dir, nats, tree };
}

const drive = (nats: NatsServerHandle, dir: string, cwd: string, make: string[], extra: string[] = []) =>
  runDftfs(['drive', ...hostArgs(nats, 'driver', path.join(dir, 'driver-home')), ...extra, 'make', ...make], { cwd });

/** `dftfs drive make ARGS` started in the background (SIGKILLed after the test); `stderr()` is what it printed so far. */
function driveInBackground(t: TestContext, nats: NatsServerHandle, dir: string, tree: string, make: string[] = []) {
  const child = spawn(process.execPath, [BIN, 'drive', ...hostArgs(nats, 'driver', path.join(dir, 'driver-home')), 'make', ...make], { cwd: tree, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stderr.on('data', (b) => { text += b; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  return { child, exited, stderr: () => text };
}

interface Offer { id: string; attempt: number; driver: string; target: string }

/**
 * A test that plays the worker: a real agent (it can serve outputs) that beats as a worker with
 * `slots`, accepts every job offered and records the offers; the test sends the results itself.
 */
async function fakeWorker(t: TestContext, nats: NatsServerHandle, dir: string, slots: number) {
  const agent = await Agent.start({ home: path.join(dir, 'test-worker'), cluster: 'test', nats: nats.url, hostId: 'test-worker', advertise: '127.0.0.1' });
  let beating: NodeJS.Timeout | undefined;
  // The heartbeat stops before the agent closes: a beat on its draining connection would throw.
  t.after(async () => {
    clearInterval(beating);
    await agent.close();
  });
  const { bus } = agent;
  const key = agent.id.replace(/[.*> ]/g, '_');
  const offers: Offer[] = [];
  bus.subscribe(bus.subject('worker', key, 'job'), (b, reply) => {
    const job = b.job as { id: string; attempt: number; target: string };
    offers.push({ id: job.id, attempt: job.attempt, driver: String(b.driver), target: job.target });
    reply({ ok: true });
  });
  const beat = () => bus.publish(bus.subject('worker', 'status'), { worker: agent.id, key, host: 'test-worker', slots, running: offers.map((o) => o.id), generation: 0 });
  beat();
  beating = setInterval(beat, 300);
  await bus.flush();
  const send = (o: Offer, outputs: unknown[]) => bus.request(bus.subject('driver', o.driver, 'result'), {
    id: o.id, attempt: o.attempt, worker: agent.id, host: 'test-worker', addr: agent.addr, status: 0, stdout: '', stderr: '', outputs, reads: [], alone: false, ms: 1,
  }, 30_000);
  return { agent, offers, send };
}

test('a multi-level Makefile with recursive make, built across two workers, gives the same files as a local make', async (t) => {
  const dir = tempDir(t, 'dftfs-drive');
  const nats = await natsFor(t);
  const tree = path.join(dir, 'tree');
  const local = path.join(dir, 'local');
  project(tree);
  project(local);
  await workers(t, nats, dir, 2, 2);
  const r = await drive(nats, dir, tree, ['-j4']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /0 run on the driver/);
  assert.match(r.stderr, /w0\/\S+: \d+ jobs/);
  assert.match(r.stderr, /w1\/\S+: \d+ jobs/);
  assert.equal(spawnSync('make', ['-j4'], { cwd: local }).status, 0);
  assert.deepEqual(snapshot(tree), snapshot(local));
  assert.ok(fs.existsSync(path.join(tree, 'sub/sub.out')), 'recursive make ran');
});

/** Seconds since process `pid` started (from /proc). */
function processAgeSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const startTicks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  const uptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  return uptime - startTicks / 100; // USER_HZ is 100 on Linux
}

test('a worker mount says it is up only once its job spawner is: the spawner\'s start-up never lands in a build', async (t) => {
  const dir = tempDir(t, 'dftfs-drive');
  const nats = await natsFor(t);
  // The spawner (and only it) takes 1.5 s longer to start.
  const slow = path.join(dir, 'slow-spawner.cjs');
  fs.writeFileSync(slow, "if ((process.argv[1] || '').endsWith('spawner-main.js')) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);\n");
  fs.mkdirSync(path.join(dir, 'w0', 'mnt'), { recursive: true });
  const w = await startDftfs(t, ['mount', path.join(dir, 'w0', 'mnt'), ...hostArgs(nats, 'w0', path.join(dir, 'w0')), '--slots', '2'], { NODE_OPTIONS: `--require=${slow}` });
  const children = fs.readFileSync(`/proc/${w.child.pid}/task/${w.child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  const spawner = children.find((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('spawner-main.js'));
  assert.ok(spawner, 'the spawner runs when the mount reports itself up');
  assert.ok(processAgeSeconds(spawner) >= 1.4, `the mount waited for its spawner (started ${processAgeSeconds(spawner).toFixed(2)} s ago)`);
});

test('a worker killed with SIGKILL mid-job: the job runs again elsewhere and the build succeeds', async (t) => {
  const { dir, nats, tree } = await singleMakefile(t, (d) => `slow.out:\n\techo $$DFTFS_WORKER $$$$ > ${path.join(d, 'running-on')}; sleep 3; echo finished > $@\n`);
  const marker = path.join(dir, 'running-on');
  const ws = await workers(t, nats, dir, 2, 1);
  const build = drive(nats, dir, tree, ['-j2']);
  // The shell creates the marker before echo writes to it: wait for the name, not for the file.
  let victim = '';
  for (let i = 0; i < 200 && !victim; i++) {
    await sleep(50);
    victim = fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8').trim() : '';
  }
  const [victimAgent, jobPid] = victim.split(' ');
  const w = ws.find((p) => p.agent === victimAgent);
  assert.ok(w && Number(jobPid) > 0, `the job ran on a known worker (${victim})`);
  await w.kill('SIGKILL');
  // Its spawner ends the job's process group once the worker is gone (not 3 s later, on its own).
  let alive = true;
  for (let i = 0; i < 40 && alive; i++) {
    await sleep(50);
    alive = fs.existsSync(`/proc/${jobPid}/stat`) && !/ Z /.test(fs.readFileSync(`/proc/${jobPid}/stat`, 'utf8'));
  }
  assert.ok(!alive, `the killed worker's job ${jobPid} ended within 2 s`);
  const r = await build;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(tree, 'slow.out'), 'utf8'), 'finished\n');
  assert.match(r.stderr, /1 re-run after a worker was lost/);
  assert.notEqual(fs.readFileSync(marker, 'utf8').split(' ')[0], victimAgent, 'the second run was on the other worker');
});

test('a worker lists a finished job in its heartbeat until the driver has taken the result (else the driver would run it again)', async (t) => {
  const dir = tempDir(t, 'dftfs-drive');
  const nats = await natsFor(t);
  await workers(t, nats, dir, 1, 1);
  // This test is the driver: it offers one job, then holds the worker's result for 2.5 s (as a
  // driver does while it fetches large outputs) and watches the worker's heartbeats meanwhile.
  const bus = await Bus.connect({ url: nats.url, cluster: 'test', name: 'test-driver' });
  t.after(() => bus.close());
  const beats: Array<{ ms: number; running: unknown[] }> = [];
  let key: string | undefined;
  bus.subscribe(bus.subject('worker', 'status'), (b) => {
    key = String(b.key);
    beats.push({ ms: performance.now(), running: b.running as unknown[] });
  });
  for (let i = 0; i < 100 && !key; i++) await sleep(50);
  assert.ok(key, 'the worker beats');
  let resultMs = 0;
  let ackMs = 0;
  const result = new Promise<Record<string, unknown>>((resolve) => bus.subscribe(bus.subject('driver', 'd1', 'result'), async (b, reply) => {
    resultMs = performance.now();
    await sleep(2500);
    ackMs = performance.now();
    reply({ ok: true });
    resolve(b);
  }));
  await bus.flush();
  const job = { id: 'job-1', attempt: 0, cwd: '.', argv: ['-c', 'true'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, target: 'x', prereqs: [], generation: -1 };
  const offer = await bus.request(bus.subject('worker', key, 'job'), { job, driver: 'd1' });
  assert.equal(offer.ok, true);
  assert.equal((await result).status, 0);
  await sleep(1500);
  const waiting = beats.filter((b) => b.ms > resultMs + 50 && b.ms < ackMs);
  assert.ok(waiting.length >= 1, 'heartbeats arrived while the result was unacknowledged');
  for (const b of waiting) assert.ok(b.running.includes('job-1'), 'the job is still listed before the driver took it');
  const after = beats.filter((b) => b.ms > ackMs + 50);
  assert.ok(after.length >= 1);
  for (const b of after) assert.ok(!b.running.includes('job-1'), 'and dropped once it did');
});

test('results of overlapping jobs on one worker arrive out of order: an older report of a path never undoes a newer one', async (t) => {
  // Jobs running side by side on a worker each report what the others wrote meanwhile: here job
  // a saw b's temp file between two of b's commands. b's result (temp file gone, b made) reaches
  // the driver first; a's older report of the temp file must not put it back into the tree. This
  // test is the worker: a real agent serves the outputs; the driver and make are real.
  const { dir, nats, tree } = await singleMakefile(t, () => 'all: a b\na:\n\ttouch $@\nb:\n\ttouch $@.tmp; mv $@.tmp $@\n');
  const { agent, offers, send } = await fakeWorker(t, nats, dir, 2);
  const { exited, stderr } = driveInBackground(t, nats, dir, tree, ['-j2']);
  for (let i = 0; i < 200 && offers.length < 2; i++) await sleep(50);
  assert.equal(offers.length, 2, `both jobs offered to the test worker: ${stderr()}`);

  const put = async (text: string) => {
    const bytes = Buffer.from(text);
    await agent.store.putBytes(bytes);
    return describeBytes(bytes);
  };
  const result = (target: string, outputs: unknown[]) => send(offers.find((o) => o.target === target)!, outputs);
  const reg = async (name: string, seq: number, text: string) => ({ seq, name, type: 'reg', mode: 0o644, mtimeMs: Date.now(), desc: await put(text) });
  assert.equal((await result('b', [{ seq: 12, name: 'b.tmp', type: 'deleted' }, await reg('b', 12, 'b final\n')])).ok, true);
  assert.equal((await result('a', [await reg('a', 5, 'a\n'), await reg('b.tmp', 10, 'b half\n')])).ok, true);
  assert.equal(await exited, 0, stderr());
  assert.deepEqual(fs.readdirSync(tree).sort(), ['Makefile', 'a', 'b'], 'the temp file b already deleted stays deleted');
  assert.equal(fs.readFileSync(path.join(tree, 'b'), 'utf8'), 'b final\n');
  assert.equal(fs.readFileSync(path.join(tree, 'a'), 'utf8'), 'a\n');
});

test('a worker sends a small output inside its result, a large one by reference', async (t) => {
  const dir = tempDir(t, 'dftfs-drive');
  const nats = await natsFor(t);
  await workers(t, nats, dir, 1, 1);
  // This test is the driver: it offers one job and reads the result the worker sends.
  const bus = await Bus.connect({ url: nats.url, cluster: 'test', name: 'test-driver' });
  t.after(() => bus.close());
  let key: string | undefined;
  bus.subscribe(bus.subject('worker', 'status'), (b) => { key = String(b.key); });
  for (let i = 0; i < 100 && !key; i++) await sleep(50);
  assert.ok(key, 'the worker beats');
  const result = new Promise<Record<string, unknown>>((resolve) => bus.subscribe(bus.subject('driver', 'd1', 'result'), (b, reply) => {
    reply({ ok: true });
    resolve(b);
  }));
  await bus.flush();
  const job = { id: 'job-1', attempt: 0, cwd: '.', argv: ['-c', 'printf small > small.txt; head -c 100000 /dev/zero > big.bin'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, target: 'x', prereqs: [], generation: -1 };
  assert.equal((await bus.request(bus.subject('worker', key, 'job'), { job, driver: 'd1' })).ok, true);
  const r = parseJobResult(await result);
  assert.equal(r.status, 0);
  const small = r.outputs.find((o) => o.name === 'small.txt');
  const big = r.outputs.find((o) => o.name === 'big.bin');
  assert.ok(small?.type === 'reg' && big?.type === 'reg', JSON.stringify(r.outputs));
  assert.equal(Buffer.from(small.data ?? '', 'base64').toString(), 'small');
  assert.equal(small.desc.digest, describeBytes(Buffer.from('small')).digest);
  assert.equal(big.data, undefined, 'a 100,000-byte output is fetched from the worker, not sent inside the result');
  assert.equal(big.desc.size, 100_000);
});

test('a result bigger than a NATS message (1,500 outputs, 2 × 256 KiB of output) comes home by reference', { timeout: 180_000 }, async (t) => {
  // Each output's entry in the result is ~480 bytes here (a 200-character name, digests, its byte
  // inline); with the two streams in base64 the result is ~1.4 MB, over NATS's 1 MiB max_payload.
  const recipe = "@mkdir -p out && for i in $$(seq 1 1500); do printf x > out/$$(printf '%0200d' $$i); done && " +
    "head -c 262144 /dev/zero | tr '\\0' o && head -c 262144 /dev/zero | tr '\\0' e >&2";
  const { dir, nats, tree } = await singleMakefile(t, () => `all:\n\t${recipe}\n`);
  await workers(t, nats, dir, 1, 1);
  const r = await drive(nats, dir, tree, [], ['--no-local']);
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.equal(r.stdout, 'o'.repeat(262_144), "the recipe's stdout reaches make's whole");
  assert.ok(r.stderr.includes('e'.repeat(262_144)), "and its stderr");
  const out = fs.readdirSync(path.join(tree, 'out'));
  assert.equal(out.length, 1500, 'every output is on the driver');
  assert.equal(fs.readFileSync(path.join(tree, 'out', '7'.padStart(200, '0')), 'utf8'), 'x');
});

test('a result sent by reference is taken only if the object holds that job\'s result; else the job runs again', async (t) => {
  const { dir, nats, tree } = await singleMakefile(t, () => 'out.txt:\n\techo made > $@\n');
  const { agent, offers } = await fakeWorker(t, nats, dir, 1);
  const { exited, stderr } = driveInBackground(t, nats, dir, tree);

  const data = Buffer.from('by reference\n');
  const outputs = [{ seq: 1, name: 'out.txt', type: 'reg', mode: 0o644, mtimeMs: Date.now(), desc: describeBytes(data), data: data.toString('base64') }];
  /** Stores `result` as an object of the test worker and sends a reference to it for `o`. */
  const sendRef = async (o: Offer, result: Record<string, unknown>) => {
    const body = Buffer.from(JSON.stringify({ worker: agent.id, host: 'test-worker', addr: agent.addr, status: 0, stdout: '', stderr: '', outputs, reads: [], alone: false, ms: 1, ...result }));
    const ref = describeBytes(body);
    await agent.storeBytes(ref, body);
    return agent.bus.request(agent.bus.subject('driver', o.driver, 'result'), { id: o.id, attempt: o.attempt, worker: agent.id, addr: agent.addr, ref }, 30_000);
  };
  for (let i = 0; i < 200 && offers.length < 1; i++) await sleep(50);
  assert.equal(offers.length, 1, `the job was offered to the test worker: ${stderr()}`);
  await assert.rejects(sendRef(offers[0]!, { id: 'another-job', attempt: 0 }), /holds another result/);
  assert.ok(!fs.existsSync(path.join(tree, 'out.txt')), 'nothing reached the tree');
  for (let i = 0; i < 200 && offers.length < 2; i++) await sleep(50);
  assert.equal(offers[1]?.attempt, 1, 'the job was offered again');
  assert.equal((await sendRef(offers[1]!, { id: offers[1]!.id, attempt: 1 })).ok, true);
  assert.equal(await exited, 0, stderr());
  assert.equal(fs.readFileSync(path.join(tree, 'out.txt'), 'utf8'), 'by reference\n');
});

test('the driver stores an output sent inside a result only if its bytes match its digest; else the job runs again', async (t) => {
  // This test is the worker, and holds nothing: the driver can take the output only from the
  // bytes inside the result. The first result carries forged bytes, the second the right ones.
  const { dir, nats, tree } = await singleMakefile(t, () => 'out.txt:\n\techo made > $@\n');
  const { agent, offers, send } = await fakeWorker(t, nats, dir, 1);
  const { exited, stderr } = driveInBackground(t, nats, dir, tree);

  const genuine = Buffer.from('genuine output\n');
  const desc = describeBytes(genuine);
  assert.ok(!agent.store.has(desc.digest));
  const output = (data: Buffer) => [{ seq: 1, name: 'out.txt', type: 'reg', mode: 0o644, mtimeMs: Date.now(), desc, data: data.toString('base64') }];
  for (let i = 0; i < 200 && offers.length < 1; i++) await sleep(50);
  assert.equal(offers.length, 1, `the job was offered to the test worker: ${stderr()}`);
  await assert.rejects(send(offers[0]!, output(Buffer.from('forged output!\n'))), /digest/);
  assert.ok(!fs.existsSync(path.join(tree, 'out.txt')), 'nothing reached the tree');
  for (let i = 0; i < 200 && offers.length < 2; i++) await sleep(50);
  assert.equal(offers[1]?.attempt, 1, 'the job was offered again');
  assert.equal((await send(offers[1]!, output(genuine))).ok, true);
  assert.equal(await exited, 0, stderr());
  assert.equal(fs.readFileSync(path.join(tree, 'out.txt'), 'utf8'), 'genuine output\n');
});

test('SIGTERM to dftfs drive stops make and its waiting shims (exit 143); SIGTERM to a worker ends its running jobs', async (t) => {
  const { dir, nats, tree } = await singleMakefile(t, () => 'all: a b\na:\n\tsleep 60; touch $@\nb:\n\tsleep 60; touch $@\n');
  const [worker] = await workers(t, nats, dir, 1, 2);
  const { child, exited, stderr } = driveInBackground(t, nats, dir, tree, ['-j2']);
  const childrenOf = (pid: number | undefined) => spawnSync('pgrep', ['-P', String(pid)]).stdout.toString().split('\n').filter(Boolean).map(Number);
  let make: number | undefined;
  let shims: number[] = [];
  let jobs: number[] = [];
  for (let i = 0; i < 300 && (shims.length < 2 || jobs.length < 2); i++) {
    await sleep(50);
    [make] = childrenOf(child.pid);
    shims = make ? childrenOf(make) : [];
    // The worker starts its jobs from its spawner process.
    jobs = childrenOf(worker!.child.pid).flatMap(childrenOf);
  }
  assert.ok(make, 'make runs under dftfs drive');
  assert.equal(shims.length, 2, 'two shims wait for their jobs');
  assert.equal(jobs.length, 2, 'the worker runs both jobs');
  child.kill('SIGTERM');
  const code = await Promise.race([exited, sleep(15_000).then(() => 'hung')]);
  assert.equal(code, 143, stderr());
  assert.match(stderr(), /SIGTERM: stopping make/);
  for (const pid of [make!, ...shims]) assert.ok(!fs.existsSync(`/proc/${pid}`), `driver-side process ${pid} is gone`);
  assert.ok(!fs.existsSync(path.join(tree, 'a')) && !fs.existsSync(path.join(tree, 'b')), 'no target counts as made');
  const groups = jobs.map((pid) => spawnSync('pgrep', ['-g', String(pid)]).stdout.toString().split('\n').filter(Boolean).map(Number)).flat();
  assert.ok(groups.length >= 4, 'each job is a shell and its sleep, in their own process group');
  assert.equal(await worker!.kill('SIGTERM'), 0);
  await sleep(200); // an orphaned sleep's exit is reaped by init
  for (const pid of groups) {
    const state = fs.existsSync(`/proc/${pid}/stat`) ? fs.readFileSync(`/proc/${pid}/stat`, 'utf8') : 'gone';
    assert.ok(state === 'gone' || / Z /.test(state), `job process ${pid} ended with the worker: ${state}`);
  }
});

test('a failing recipe fails make with its stderr and status; no worker means local with a warning, or failure with --no-local', async (t) => {
  const { dir, nats, tree } = await singleMakefile(t, () => 'ok.txt:\n\techo fine > $@\nbad:\n\techo said; echo oops >&2; exit 3\nquiet:\n\t@true\n');
  const alone = await drive(nats, dir, tree, ['ok.txt']);
  assert.equal(alone.code, 0);
  assert.match(alone.stderr, /no worker is connected: running jobs on the driver/);
  fs.rmSync(path.join(tree, 'ok.txt'));
  const refused = await drive(nats, dir, tree, ['ok.txt'], ['--no-local']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /no worker is connected/);

  await workers(t, nats, dir, 1, 2);
  const r = await drive(nats, dir, tree, ['bad']);
  assert.equal(r.code, 2, 'make exits 2 when a recipe fails');
  assert.match(r.stderr, /oops/);
  assert.match(r.stderr, /Error 3/);
  assert.match(r.stdout, /^said$/m, "the recipe's stdout reaches make's");
  assert.doesNotMatch(r.stdout, /^oops$/m);
  const quiet = await drive(nats, dir, tree, ['quiet']);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stdout, '', 'a quiet job prints nothing');
});

test('a recipe that reads a file made by another rule without depending on it is reported', async (t) => {
  // `| gen.h` orders the rules but leaves gen.h out of $^: a change to gen.h would not rebuild b.txt.
  const { dir, nats, tree } = await singleMakefile(t, () => 'all: b.txt c.txt\ngen.h:\n\techo gen > $@\nb.txt: | gen.h\n\tcat gen.h > $@\nc.txt: gen.h\n\tcat gen.h > $@\n');
  await workers(t, nats, dir, 1, 1);
  const r = await drive(nats, dir, tree, ['-j1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /undeclared dependency: recipe for b\.txt read gen\.h \(made by the rule for gen\.h\)/);
  assert.doesNotMatch(r.stderr, /recipe for c\.txt/, 'a declared prerequisite is not reported');
});


test('a job goes to the host that holds its inputs: rules that read one source file all run where the first fetched it', async (t) => {
  // With -j1 both workers are free for every job; without the preference each of the ten would
  // go to either (all ten on one worker by chance: 1 in 512).
  const outs = Array.from({ length: 10 }, (_, i) => `r${i}.out`);
  const { dir, nats, tree } = await singleMakefile(t, () => `all: ${outs.join(' ')}\n%.out: big.bin\n\tcksum $< > $@\n`);
  fs.writeFileSync(path.join(tree, 'big.bin'), Buffer.alloc(1024 * 1024, 7));
  await workers(t, nats, dir, 2, 1);
  const r = await drive(nats, dir, tree, ['-j1']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual([...r.stderr.matchAll(/^ +w\d\/\S+: (\d+) jobs$/gm)].map((m) => Number(m[1])), [10], r.stderr);
  // Only that worker's host fetched it.
  assert.deepEqual(storesHolding(dir, path.join(tree, 'big.bin')), ['w0', 'w1'].filter((w) => r.stderr.includes(`  ${w}/`)));
});

/** Which of the worker homes w0 and w1 hold `file`'s bytes in their host store. */
function storesHolding(dir: string, file: string): string[] {
  const digest = b3sum(file) as Digest;
  return ['w0', 'w1'].filter((w) => new ObjectStore(storeDir(path.join(dir, w))).has(digest));
}

test('a directory whose name starts with two dots is inside the tree: its recipes run on a worker', async (t) => {
  const { dir, nats, tree } = await singleMakefile(t, () => 'all:\n\t$(MAKE) -C ..sub\n');
  fs.mkdirSync(path.join(tree, '..sub'));
  fs.writeFileSync(path.join(tree, '..sub', 'Makefile'), 'where.txt:\n\tpwd > $@\n');
  await workers(t, nats, dir, 1, 1);
  const r = await drive(nats, dir, tree, []);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(tree, '..sub', 'where.txt'), 'utf8').trim(), path.join(dir, 'w0', 'mnt', '..sub'), 'run in the worker\'s mount, not here');
});

test('jobs offered at once follow each other to the host their inputs are going to', async (t) => {
  // Four rules start together on 2 workers × 2 slots, two on a.bin and two on b.bin: the second
  // job of each input is picked while the first one's offer is still on its way. They wait for
  // `go` (order only: not an input), so both workers have answered the driver's ping by then.
  const { dir, nats, tree } = await singleMakefile(t, () => 'all: a1 a2 b1 b2\ngo:\n\tsleep 0.5; touch go\na1 a2: a.bin | go\n\tsleep 1; cksum $< > $@\nb1 b2: b.bin | go\n\tsleep 1; cksum $< > $@\n');
  fs.writeFileSync(path.join(tree, 'a.bin'), Buffer.alloc(1024 * 1024, 1));
  fs.writeFileSync(path.join(tree, 'b.bin'), Buffer.alloc(1024 * 1024, 2));
  await workers(t, nats, dir, 2, 2);
  const r = await drive(nats, dir, tree, ['-j4']);
  assert.equal(r.code, 0, r.stderr);
  const a = storesHolding(dir, path.join(tree, 'a.bin'));
  const b = storesHolding(dir, path.join(tree, 'b.bin'));
  assert.equal(a.length, 1, `a.bin fetched by ${a.join(', ')}`);
  assert.equal(b.length, 1, `b.bin fetched by ${b.join(', ')}`);
  assert.notDeepEqual(a, b);
});

/** Bytes of `file` in the page cache, by util-linux's fincore. */
function cachedBytes(file: string): number {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `fincore ${file}: ${r.error?.message ?? r.stderr}`);
  return Number(r.stdout.trim());
}

test('a big prerequisite is read through the worker\'s mount while its job runs: the job finds it in the page cache', async (t) => {
  // Neither recipe reads its prerequisite: only the worker can have put big.bin (1 MiB) in the
  // mount's page cache; small.bin (64 KiB) is below the size worth the extra open.
  const { dir, nats, tree } = await singleMakefile(t, () => 'all: big.out small.out\nbig.out: big.bin\n\tsleep 1; echo done > $@\nsmall.out: small.bin\n\tsleep 1; echo done > $@\n');
  fs.writeFileSync(path.join(tree, 'big.bin'), Buffer.alloc(1024 * 1024, 7));
  fs.writeFileSync(path.join(tree, 'small.bin'), Buffer.alloc(64 * 1024, 7));
  await workers(t, nats, dir, 1, 2);
  const r = await drive(nats, dir, tree, ['-j2']);
  assert.equal(r.code, 0, r.stderr);
  const mnt = path.join(dir, 'w0', 'mnt');
  assert.equal(cachedBytes(path.join(mnt, 'big.bin')), 1024 * 1024);
  assert.equal(cachedBytes(path.join(mnt, 'small.bin')), 0);
});
test('dftfs demo builds Makefile.example on two worker mounts and matches a local make', async () => {
  const r = await runDftfs(['demo', '--quiet']);
  // stderr first: it holds the failing recipe's message, and a CI log shows only the start.
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /outputs identical: \d+ files in both trees/);
  assert.match(r.stdout, /worker1\/\S+: \d+ jobs/);
  assert.doesNotMatch(fs.readFileSync('/proc/self/mounts', 'utf8'), /dftfs-demo-/, 'no mount left behind');
});
