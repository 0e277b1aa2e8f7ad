import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/**
 * NODE_EXTRA_CA_CERTS as the harness found it. These build machines set it (for their TLS proxy to
 * the npm registry); with it, every Node process parses the whole CA bundle as it starts, ~70 ms
 * here before any code of ours runs (`node -e 0`: 0.09-0.13 s with it, 0.03 s without). A fresh
 * Debian host has no such variable. bench/run.ts removes it from its environment, so no process a
 * benchmark times pays for it; npm, which needs it to reach the registry here, gets it back.
 */
export const EXTRA_CA_CERTS = process.env.NODE_EXTRA_CA_CERTS;

/** The environment for npm: the harness's, with NODE_EXTRA_CA_CERTS as it was. */
export const registryEnv = (): NodeJS.ProcessEnv => ({ ...process.env, ...(EXTRA_CA_CERTS ? { NODE_EXTRA_CA_CERTS: EXTRA_CA_CERTS } : {}) });

/** The built CLI. */
export const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../bundle/bin.js');

/** Starts a long-running process and resolves once its output matches `ready`. */
export function startProc(args: string[], ready: RegExp = /^agent /m): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let text = '';
    const on = (b: Buffer) => { text += b; if (ready.test(text)) resolve(child); };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (c) => reject(new Error(`${args.join(' ')} exited ${c}: ${text}`)));
  });
}

/** SIGTERM, then wait for the exit (a mount unmounts itself on SIGTERM). */
export const stopProc = (c: ChildProcess) => new Promise<void>((r) => {
  if (c.exitCode !== null || c.signalCode !== null) return r();
  c.once('exit', () => r());
  c.kill('SIGTERM');
});
