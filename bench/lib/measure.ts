import type { SimHost } from './cluster.js';

/** Runs f and returns [seconds it took, its value]. */
export async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await f();
  return [(performance.now() - t0) / 1000, v];
}

/**
 * Checks every worker's copy at `target` (its digest must be `want`), then deletes it, so the
 * next system starts from nothing. A wrong or missing copy fails the run: no time is reported
 * for a transfer that did not deliver.
 */
export async function verifyAndRemove(workers: SimHost[], target: string, want: string, system: string,
  digest: (h: SimHost, p: string) => Promise<string>): Promise<void> {
  await Promise.all(workers.map(async (w) => {
    const got = await digest(w, target).catch(() => '');
    if (got !== want) throw new Error(`${system}: ${w.name}'s copy at ${target} is ${got ? 'different' : 'missing'} (want ${want})`);
    await w.exec(['rm', '-rf', target]);
  }));
}
