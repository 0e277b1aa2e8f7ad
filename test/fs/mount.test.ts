import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { NatsServerHandle } from '../../src/bus/index.js';
import { hostArgs, natsFor, startDftfs } from '../cluster-helpers.js';
import { b3sum, pseudoRandom, tempDir, until } from '../helpers.js';

/** Runs a shell command in a child process: the mount is never read from the process serving it (here, not even from the test). */
function sh(cmd: string, opts: { timeoutMs?: number } = {}) {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const mounted = (mnt: string) => fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt);

function makeTree(src: string): void {
  fs.mkdirSync(path.join(src, 'lib/deep'), { recursive: true });
  fs.mkdirSync(path.join(src, 'private'));
  fs.writeFileSync(path.join(src, 'README'), 'read me\n');
  fs.writeFileSync(path.join(src, 'empty'), '');
  fs.writeFileSync(path.join(src, 'lib/big.bin'), pseudoRandom(9 * 1024 * 1024 + 123, 7));
  fs.writeFileSync(path.join(src, 'lib/deep/run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
  fs.writeFileSync(path.join(src, 'private/secret'), 'secret\n', { mode: 0o600 });
  fs.chmodSync(path.join(src, 'private'), 0o750);
  fs.symlinkSync('lib/deep/run.sh', path.join(src, 'run'));
}

interface Cluster { nats: NatsServerHandle; dir: string; src: string; mnt: string }

async function cluster(t: TestContext): Promise<Cluster> {
  const dir = tempDir(t, 'dftfs-mount');
  const src = path.join(dir, 'src');
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  makeTree(src);
  return { nats: await natsFor(t), dir, src, mnt };
}

const serve = (t: TestContext, c: Cluster, extra: string[] = []) =>
  startDftfs(t, ['serve', c.src, ...hostArgs(c.nats, 'driver', path.join(c.dir, 'h-driver')), ...extra]);
const mount = (t: TestContext, c: Cluster, extra: string[] = []) =>
  startDftfs(t, ['mount', c.mnt, ...hostArgs(c.nats, 'worker', path.join(c.dir, 'h-worker')), ...extra]);

/** type, mode, size (not for directories), mtime second, link target and name of every entry. */
const listing = (root: string) => sh(`cd ${root} && find . -printf '%y %m %s %Ts %l %P\\n' | awk '$1=="d"{$3="-"} {print}' | sort`).out;

test('the mount lists, stats and reads exactly the driver\'s tree', async (t) => {
  const c = await cluster(t);
  await serve(t, c);
  const m = await mount(t, c);
  assert.equal(listing(c.mnt), listing(c.src));
  for (const f of ['README', 'empty', 'lib/big.bin', 'lib/deep/run.sh']) assert.equal(b3sum(path.join(c.mnt, f)), b3sum(path.join(c.src, f)), f);
  assert.equal(sh(`${c.mnt}/run`).out, 'ran\n', 'an executable runs through a symlink');
  assert.equal(sh(`cat ${c.mnt}/nothing-here`).code, 1);
  assert.match(sh(`cat ${c.mnt}/nothing-here`).err, /No such file/);
  assert.equal(await m.kill('SIGTERM'), 0);
  assert.equal(mounted(c.mnt), false, 'SIGTERM unmounts');
});

test('a change on the driver shows up once its generation is announced', async (t) => {
  const c = await cluster(t);
  const s = await serve(t, c);
  const m = await mount(t, c);
  fs.writeFileSync(path.join(c.src, 'README'), 'read me, changed\n');
  fs.writeFileSync(path.join(c.src, 'lib/added.h'), '#define ADDED 1\n');
  fs.rmSync(path.join(c.src, 'empty'));
  s.child.kill('SIGHUP');
  await until('generation 1 on the mount', () => /generation 1 applied/.test(m.err()));
  // The kernel may keep old attributes for ATTR_TIMEOUT_S (1 s) after the view changed.
  await until('new contents', () => sh(`cat ${c.mnt}/README`).out === 'read me, changed\n', 3000);
  assert.equal(sh(`cat ${c.mnt}/lib/added.h`).out, '#define ADDED 1\n');
  await until('deleted file gone', () => !fs.existsSync(path.join(c.mnt, 'empty')), 3000);
  assert.equal(listing(c.mnt), listing(c.src));
});

test('writes land in the upper layer, leave the driver\'s tree alone and survive a remount', async (t) => {
  const c = await cluster(t);
  await serve(t, c);
  let m = await mount(t, c);
  const r = sh([
    `cd ${c.mnt}`, 'echo out > lib/deep/new.o', 'echo appended >> README', 'mkdir -p build/obj', 'cp lib/big.bin build/obj/copy.bin',
    'mv build/obj/copy.bin build/big2.bin', 'rm lib/deep/run.sh', 'chmod 600 README', 'touch -d "2021-02-03 04:05:06" build/big2.bin', 'ln -s ../README build/readme',
  ].join(' && '));
  assert.equal(r.code, 0, r.err);
  assert.equal(fs.readFileSync(path.join(c.src, 'README'), 'utf8'), 'read me\n');
  assert.ok(fs.existsSync(path.join(c.src, 'lib/deep/run.sh')));
  assert.equal(await m.kill('SIGTERM'), 0);
  assert.equal(mounted(c.mnt), false);

  m = await mount(t, c);
  assert.equal(sh(`cat ${c.mnt}/README`).out, 'read me\nappended\n');
  assert.equal(sh(`stat -c %a ${c.mnt}/README`).out.trim(), '600');
  assert.equal(sh(`cat ${c.mnt}/lib/deep/new.o`).out, 'out\n');
  assert.equal(b3sum(path.join(c.mnt, 'build/big2.bin')), b3sum(path.join(c.src, 'lib/big.bin')));
  assert.equal(sh(`date -u -r ${c.mnt}/build/big2.bin +%FT%T`).out.trim(), '2021-02-03T04:05:06');
  assert.equal(sh(`readlink ${c.mnt}/build/readme`).out.trim(), '../README');
  assert.equal(fs.existsSync(path.join(c.mnt, 'lib/deep/run.sh')), false, 'a deletion survives the remount');
  await m.kill('SIGTERM');
});

test('a mount killed with SIGKILL leaves a stale mount that the next mount cleans', async (t) => {
  const c = await cluster(t);
  await serve(t, c);
  const m = await mount(t, c);
  await m.kill('SIGKILL');
  assert.ok(mounted(c.mnt), 'the kernel still lists the dead mount');
  assert.match(sh(`ls ${c.mnt}`).err, /not connected/);
  const again = await mount(t, c);
  assert.equal(sh(`cat ${c.mnt}/README`).out, 'read me\n');
  await again.kill('SIGTERM');
  assert.equal(mounted(c.mnt), false);
});

test('a remote that disappears mid-read gives EIO within the fetch bound, not a hang', async (t) => {
  const c = await cluster(t);
  fs.writeFileSync(path.join(c.src, 'huge.bin'), pseudoRandom(48 * 1024 * 1024, 3));
  // 4 MiB/s: the read is still running when the driver dies.
  const s = await serve(t, c, ['--bwlimit', '4m']);
  await mount(t, c, ['--fetch-timeout', '3']);
  // A read is served as soon as the chunks it covers are here: long before the whole file is.
  const head = sh(`head -c 4096 ${c.mnt}/huge.bin | od -An -tx1 | head -1`);
  assert.equal(head.out, sh(`head -c 4096 ${c.src}/huge.bin | od -An -tx1 | head -1`).out);
  const digest = b3sum(path.join(c.src, 'huge.bin')).slice(7);
  assert.equal(fs.existsSync(path.join(c.dir, 'h-worker/store/objects', digest.slice(0, 2), digest.slice(2))), false, 'the whole file has not arrived yet');
  const cat = spawn('cat', [path.join(c.mnt, 'huge.bin')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  cat.stderr.on('data', (b) => { err += b; });
  const exited = new Promise<number | null>((r) => cat.once('exit', (code) => r(code)));
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(cat.exitCode, null, 'still reading when the driver dies');
  const killedAt = Date.now();
  await s.kill('SIGKILL');
  const code = await exited;
  const ms = Date.now() - killedAt;
  assert.notEqual(code, 0);
  assert.match(err, /Input\/output error/);
  assert.ok(ms < 3000 + 4000, `EIO came ${ms} ms after the driver died (bound 3 s + slack)`);
});

test('--read-only refuses writes with EROFS; permission bits are enforced for other users', async (t) => {
  const c = await cluster(t);
  await serve(t, c);
  await mount(t, c, ['--read-only', '--allow-other']);
  assert.match(sh(`touch ${c.mnt}/x`).err, /Read-only file system/);
  assert.match(sh(`echo y >> ${c.mnt}/README`).err, /Read-only file system/);
  fs.chmodSync(c.dir, 0o755);
  assert.equal(sh(`runuser -u nobody -- cat ${c.mnt}/README`).out, 'read me\n');
  assert.match(sh(`runuser -u nobody -- cat ${c.mnt}/private/secret`).err, /Permission denied/);
});
