import { spawn } from 'node:child_process';
import os from 'node:os';

export interface Captured {
  status: number;
  /** base64, at most `maxBytes` of each stream */
  stdout: string;
  stderr: string;
}

/**
 * Runs `/bin/sh ARGV` and captures its output (base64, so any bytes survive a
 * JSON message). With `abort`, the command runs in its own process group and aborting sends the
 * whole group SIGTERM (the shell and whatever it started).
 */
export function runCaptured(argv: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; maxBytes: number; abort?: AbortSignal }): Promise<Captured> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', argv, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.abort !== undefined });
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGTERM');
      } catch {
        // The group is gone already.
      }
    };
    if (opts.abort?.aborted) kill();
    opts.abort?.addEventListener('abort', kill, { once: true });
    child.on('close', () => opts.abort?.removeEventListener('abort', kill));
    const keep = () => {
      const parts: Buffer[] = [];
      let n = 0;
      return {
        add: (b: Buffer) => { if (n < opts.maxBytes) { parts.push(b); n += b.length; } },
        get: () => Buffer.concat(parts).subarray(0, opts.maxBytes).toString('base64'),
      };
    };
    const out = keep();
    const err = keep();
    child.stdout.on('data', out.add);
    child.stderr.on('data', err.add);
    child.on('error', (e) => resolve({ status: 127, stdout: '', stderr: Buffer.from(`${e.message}\n`).toString('base64') }));
    child.on('close', (code, signal) => resolve({ status: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1), stdout: out.get(), stderr: err.get() }));
  });
}
