import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** The built CLI. */
export const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../src/cli/bin.js');

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
