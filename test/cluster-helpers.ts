import { spawn, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { startNatsServer, type NatsServerHandle } from '../src/bus/index.js';
import { BIN } from './helpers.js';

/** A real nats-server on loopback for one test. */
export async function natsFor(t: TestContext, port?: number): Promise<NatsServerHandle> {
  const nats = await startNatsServer({ port });
  t.after(() => nats.stop());
  return nats;
}

export interface Proc {
  child: ChildProcess;
  agent: string;
  port: number;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
  kill(sig?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts a long-running dftfs command (serve, agent) and waits for its `agent ID at IP:PORT`
 * line. Killed when the test ends.
 */
export async function startDftfs(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (b) => { err += b; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const kill = async (sig: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    return exited;
  };
  t.after(() => kill('SIGKILL'));
  const [agent, port] = await new Promise<[string, number]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dftfs ${args.join(' ')} did not start: ${err}`)), 20_000);
    child.stdout!.on('data', (b) => {
      out += b;
      const m = /^agent (\S+) at [\d.]+:(\d+)/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve([m[1]!, Number(m[2])]);
      }
    });
    void exited.then((code) => reject(new Error(`dftfs ${args.join(' ')} exited with ${code}: ${err}`)));
  });
  return { child, agent, port, out: () => out, err: () => err, exited, kill };
}

/** Common flags for a test host on loopback. */
export const hostArgs = (nats: NatsServerHandle, hostId: string, home: string, cluster = 'test') =>
  ['--nats', nats.url, '--cluster', cluster, '--host-id', hostId, '--advertise', '127.0.0.1', '--home', home];
