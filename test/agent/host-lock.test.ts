import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { HostLocks } from '../../src/agent/host-lock.js';
import { tempDir } from '../helpers.js';

const OBJ = `blake3:${'ab'.repeat(32)}` as const;

test('host locks: one holder per object per store, kept in /dev/shm; a dead holder\'s lock is taken over', async (t) => {
  const dir = tempDir(t);
  const storeA = path.join(dir, 'a/store');
  const a1 = new HostLocks(storeA);
  const a2 = new HostLocks(storeA);
  const b = new HostLocks(path.join(dir, 'b/store'));
  t.after(() => { for (const l of [a1, b]) fs.rmSync(l.dir, { recursive: true, force: true }); });
  assert.equal(a1.dir, a2.dir, 'agents sharing a store share its locks');
  assert.notEqual(a1.dir, b.dir, 'another store has its own');
  assert.ok(a1.dir.startsWith('/dev/shm/dftfs-locks-'), a1.dir);

  const holder = spawn('sleep', ['30']);
  t.after(() => holder.kill('SIGKILL'));
  const info = (pid: number, agent: string) => ({ pid, agent, object: OBJ, size: 1, startedMs: Date.now() });
  assert.equal(a1.tryAcquire(info(holder.pid!, 'other-process')), true);
  assert.equal(a2.tryAcquire(info(process.pid, 'me')), false, 'a live process holds it');
  assert.equal(b.tryAcquire(info(process.pid, 'me')), true, 'locks of another store are separate');
  assert.deepEqual((await a2.list()).map((l) => l.agent), ['other-process'], 'dftfs status sees the transfer');
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  assert.equal(a2.tryAcquire(info(process.pid, 'me')), true, 'the dead holder\'s lock is stale');
  a2.release(OBJ);
  a2.release(OBJ); // twice is harmless
  assert.equal(a1.read(OBJ), undefined);

  fs.rmSync(path.join(dir, 'b'), { recursive: true });
  assert.ok(fs.existsSync(b.dir));
  const again = new HostLocks(storeA);
  assert.equal(again.dir, a1.dir);
  assert.ok(!fs.existsSync(b.dir), 'the lock directory of a deleted store is removed when an agent starts');
});

test('host locks: two processes taking the same lock over and over never hold it at once', async (t) => {
  const dir = tempDir(t);
  const store = path.join(dir, 'store');
  const locks = new HostLocks(store);
  t.after(() => fs.rmSync(locks.dir, { recursive: true, force: true }));
  const owner = path.join(dir, 'owner');
  // Each process: take the lock, claim `owner` exclusively (EEXIST = someone else holds the lock
  // too), give it up. A lock file that shows up before its content is in lets the other process
  // take it for stale.
  const script = `
    import fs from 'node:fs';
    const { HostLocks } = await import(${JSON.stringify(new URL('../../src/agent/host-lock.js', import.meta.url).href)});
    const locks = new HostLocks(${JSON.stringify(store)});
    let held = 0;
    for (let i = 0; i < 3000; i++) {
      if (!locks.tryAcquire({ pid: process.pid, agent: 'a' + process.pid, object: ${JSON.stringify(OBJ)}, size: 1, startedMs: Date.now() })) continue;
      try { fs.writeFileSync(${JSON.stringify(owner)}, String(process.pid), { flag: 'wx' }); }
      catch { console.log('both'); process.exit(1); }
      held++;
      fs.rmSync(${JSON.stringify(owner)});
      locks.release(${JSON.stringify(OBJ)});
    }
    console.log('held', held);`;
  const file = path.join(dir, 'contend.mjs');
  fs.writeFileSync(file, script);
  const run = () => new Promise<{ code: number | null; out: string }>((resolve) => {
    const c = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    c.on('exit', (code) => resolve({ code, out }));
  });
  const results = await Promise.all([run(), run()]);
  for (const r of results) assert.equal(r.code, 0, `a process found the lock held by the other while it held it: ${r.out}`);
  assert.ok(results.every((r) => /held [1-9]/.test(r.out)), 'both took the lock at some point');
});
