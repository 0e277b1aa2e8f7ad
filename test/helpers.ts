import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

/** The built CLI entry point. */
export const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../bundle/bin.js');

/** A fresh temp directory removed when the test ends. */
export function tempDir(t: TestContext, label = 'dftfs-test'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`));
  t.after(() => {
    unmountUnder(dir);
    // Retried: an upper layer may still be saving its state in the background when the test ends
    // (ENOTEMPTY failed one full run's teardown).
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
  });
  return dir;
}

/** Lazily unmounts every mount below `dir` (a test's FUSE mounts, whatever state they were left in). */
export function unmountUnder(dir: string): void {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  for (const m of mounts.filter((m) => m.startsWith(dir + '/')).reverse()) {
    try {
      execFileSync('fusermount', ['-uz', m], { stdio: 'ignore' });
    } catch {
      // Already gone.
    }
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `dftfs ARGS` as a real process. */
export function runDftfs(args: string[], opts: { env?: NodeJS.ProcessEnv; user?: string; input?: Buffer; cwd?: string } = {}): Promise<RunResult> {
  const cmd = opts.user ? 'runuser' : process.execPath;
  const argv = opts.user ? ['-u', opts.user, '--', process.execPath, BIN, ...args] : [BIN, ...args];
  return new Promise((resolve) => {
    const child = execFile(cmd, argv, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, maxBuffer: 256 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (opts.input) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** `b3sum` of a file, as `blake3:<hex>`: the reference the digests are checked against. */
export function b3sum(file: string): string {
  return 'blake3:' + execFileSync('b3sum', ['--no-names', file], { encoding: 'utf8' }).trim();
}

/** `b3sum` of bytes (written to a temp file first). */
export function b3sumBytes(dir: string, bytes: Uint8Array): string {
  const f = path.join(dir, `.b3-${process.hrtime.bigint()}`);
  fs.writeFileSync(f, bytes);
  try {
    return b3sum(f);
  } finally {
    fs.rmSync(f);
  }
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function pseudoRandom(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    if ((i & 3) === 0) {
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5; x >>>= 0;
    }
    out[i] = (x >>> ((i & 3) * 8)) & 0xff;
  }
  return out;
}

/** Polls `fn` until it holds; throws after `ms`, naming `what` was waited for. */
export async function until(what: string, fn: () => boolean, ms = 15_000, pollMs = 100): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
