import { spawn, type ChildProcess } from 'node:child_process';
import { DftfsError } from '../errors.js';
import { createLogger } from '../log.js';

const log = createLogger('bus');

/** nats-server prints its listen line within milliseconds; this is generous for a loaded host. */
const START_TIMEOUT_MS = 10_000;

export interface NatsServerHandle {
  url: string;
  port: number;
  pid: number;
  /** Stops the server (SIGTERM, then SIGKILL); idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts a nats-server of our own (the embedded default when no `--nats` URL is given). Port 0
 * picks a free port. The server is a child process: it is ours to stop, by pid.
 */
export async function startNatsServer(opts: { port?: number; host?: string; bin?: string } = {}): Promise<NatsServerHandle> {
  const host = opts.host ?? '127.0.0.1';
  const args = ['-a', host, '-p', String(opts.port && opts.port > 0 ? opts.port : -1)];
  let child: ChildProcess;
  try {
    child = spawn(opts.bin ?? 'nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new DftfsError('ERR_DFTFS_NATS', `cannot start nats-server: ${(err as Error).message}`, { cause: err });
  }
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => fail(`it did not report a client port within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new DftfsError('ERR_DFTFS_NATS', `cannot start nats-server: ${why}`, {
        hint: 'install it (Debian: apt-get install nats-server) or pass --nats URL of a running server',
      }));
    };
    const onError = (err: Error) => fail(err.message);
    const onExit = (code: number | null) => fail(`it exited with code ${code}: ${seen.trim().split('\n').slice(-3).join(' | ')}`);
    const onData = (b: Buffer) => {
      seen += b.toString();
      const m = /Listening for client connections on [^\s]*:(\d+)/.exec(seen);
      if (m) {
        // Detach only our own start-up listeners, once: later output must not touch them.
        clearTimeout(timer);
        child.off('error', onError);
        child.off('exit', onExit);
        child.stderr!.off('data', onData);
        resolve(Number(m[1]));
      }
      if (seen.length > 64 * 1024) seen = seen.slice(-8192);
    };
    child.once('error', onError);
    child.once('exit', onExit);
    child.stderr!.on('data', onData);
  });
  child.stderr!.resume();
  log.debug('nats-server started', `pid ${child.pid} port ${port}`);
  let stopping: Promise<void> | undefined;
  return {
    url: `nats://${host}:${port}`,
    port,
    pid: child.pid!,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      });
      return stopping;
    },
  };
}
