import { DftfsError } from '../errors.js';

/** Where a command writes: injectable so tests capture output without a terminal. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export const processIo = (): CliIo => ({ stdout: process.stdout, stderr: process.stderr });

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export interface Reporter {
  info(line: string): void;
  warn(line: string): void;
  /** Redraws a one-line progress bar on a TTY (at most every 100 ms); nothing elsewhere. */
  progress(done: number, total: number, label: string): void;
  /** Clears the progress line. */
  endProgress(): void;
}

/** Progress redraws are throttled: a terminal cannot show more, and each write costs a syscall. */
const PROGRESS_INTERVAL_MS = 100;

export function createReporter(io: CliIo, opts: { quiet?: boolean } = {}): Reporter {
  let last = 0;
  let shown = false;
  const tty = Boolean(io.stderr.isTTY) && !opts.quiet;
  return {
    info(line) {
      if (!opts.quiet) io.stderr.write(line + '\n');
    },
    warn(line) {
      if (shown) this.endProgress();
      io.stderr.write(`dftfs: warning: ${line}\n`);
    },
    progress(done, total, label) {
      if (!tty) return;
      const now = Date.now();
      if (now - last < PROGRESS_INTERVAL_MS && done < total) return;
      last = now;
      const frac = total > 0 ? Math.min(1, done / total) : 1;
      const width = 30;
      const fill = Math.round(frac * width);
      io.stderr.write(`\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ${label}\x1b[K`);
      shown = true;
    },
    endProgress() {
      if (shown) io.stderr.write('\r\x1b[K');
      shown = false;
    },
  };
}

/** Exit codes, as documented in `dftfs --help`. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Turns any error into the lines a user sees and the exit code. */
export function describeError(err: unknown): { lines: string[]; exitCode: number } {
  if (err instanceof DftfsError) {
    const lines = [`dftfs: ${err.message}`];
    if (err.hint) lines.push(`hint: ${err.hint}`);
    return { lines, exitCode: err.code === 'ERR_DFTFS_USAGE' ? EXIT_USAGE : EXIT_FAILURE };
  }
  if (err instanceof Error && err.name === 'CLIError') return { lines: [`dftfs: ${err.message}`, 'hint: see dftfs --help'], exitCode: EXIT_USAGE };
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && e.syscall) return { lines: [`dftfs: ${e.message}`], exitCode: EXIT_FAILURE };
  return { lines: [`dftfs: unexpected error: ${e?.stack ?? String(err)}`], exitCode: EXIT_FAILURE };
}
