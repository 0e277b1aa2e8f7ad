import fs from 'node:fs';
import path from 'node:path';
import { HOST_DIR, setAside, type SimHost } from './cluster.js';
import type { SystemRun } from './report.js';

/** Runs f and returns [seconds it took, its value]. */
export async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await f();
  return [(performance.now() - t0) / 1000, v];
}

/**
 * Checks every worker's copy at `target` (its digest must be `want`), then deletes it (or, in a
 * cluster that defers deletes, moves it out of the way: see setAside), so the next system starts
 * from nothing. A wrong or missing copy fails the run: no time is reported for a transfer that
 * did not deliver.
 */
export async function verifyAndRemove(workers: SimHost[], target: string, want: string, system: string,
  digest: (h: SimHost, p: string) => Promise<string>): Promise<void> {
  await Promise.all(workers.map(async (w) => {
    const got = await digest(w, target).catch(() => '');
    if (got !== want) throw new Error(`${system}: ${w.name}'s copy at ${target} is ${got ? 'different' : 'missing'} (want ${want})`);
    if (w.defersDeletes) setAside(hostPathOutside(w, target));
    else await w.exec(['rm', '-rf', target]);
  }));
}

/** A path under HOST_DIR as seen from inside host `h`, from outside it (the harness's view). */
export function hostPathOutside(h: SimHost, inside: string): string {
  const rel = path.relative(HOST_DIR, inside);
  if (rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) throw new Error(`${inside} is not under ${HOST_DIR}`);
  return path.join(h.dir, rel);
}

/**
 * Times one system's transfer, then checks what it delivered (a failed check fails the run),
 * records the time and the machine's CPU-seconds during the transfer in `runs` and prints them.
 * Returns the seconds.
 */
export async function measureSystem(runs: SystemRun[], system: string, workers: number,
  transfer: () => Promise<unknown>, verify: () => Promise<void>, detail?: Record<string, unknown>): Promise<number> {
  const cpu0 = machineCpuSeconds();
  const [seconds] = await timed(transfer);
  const cpuSeconds = machineCpuSeconds() - cpu0;
  await verify();
  runs.push({ system, workers, seconds, cpuSeconds, ...(detail ? { detail } : {}) });
  process.stderr.write(`  ${system}: ${seconds.toFixed(2)} s, ${cpuSeconds.toFixed(2)} CPU-s\n`);
  return seconds;
}

/**
 * CPU-seconds the whole machine has spent so far (every process, kernel included), from /proc/stat.
 * Not steal: that is time the hypervisor gave to other guests while this one waited.
 */
export function machineCpuSeconds(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq] = f as number[];
  return (user! + nice! + system! + irq! + softirq!) / 100; // USER_HZ
}
