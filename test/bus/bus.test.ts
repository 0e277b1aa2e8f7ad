import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const BUS = new URL('../../src/bus/index.js', import.meta.url).href;

test('Bus.close() ends the connection when nats-server stops at the same moment (the process can exit)', () => {
  // In a child process: a connection left open would reconnect forever and keep it alive.
  const script = `
    import { Bus, startNatsServer } from ${JSON.stringify(BUS)};
    const server = await startNatsServer();
    const bus = await Bus.connect({ url: server.url, cluster: 'test', name: 'closing' });
    const stopped = server.stop();
    await bus.close();
    await stopped;
    console.log('closed');
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(r.signal, null, `the process did not exit within 15 s: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'closed');
});
