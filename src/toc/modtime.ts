/**
 * Modification times as RFC 3339 strings with nanoseconds (what eStargz writes), converted from
 * and to nanoseconds since the epoch. Make compares mtimes, so no precision may be lost.
 */

const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/;

/** Files of a tree share few distinct seconds; the date part of each is formatted once. */
const secondsCache = new Map<bigint, string>();
const SECONDS_CACHE_MAX = 4096;

export function formatModtime(ns: bigint): string {
  const sec = ns >= 0n ? ns / 1_000_000_000n : (ns - 999_999_999n) / 1_000_000_000n;
  const frac = ns - sec * 1_000_000_000n;
  let base = secondsCache.get(sec);
  if (base === undefined) {
    if (secondsCache.size >= SECONDS_CACHE_MAX) secondsCache.clear();
    base = new Date(Number(sec) * 1000).toISOString().slice(0, 19);
    secondsCache.set(sec, base);
  }
  return `${base}.${frac.toString().padStart(9, '0')}Z`;
}

/**
 * From a `Stats.mtimeMs` double. Doubles near today's epoch resolve ~0.25 µs, finer than any
 * consumer (fuse-native takes Dates, utimes takes doubles), so the walk can avoid BigInt stats.
 */
export function formatModtimeMs(ms: number): string {
  const sec = Math.floor(ms / 1000);
  let frac = Math.round((ms - sec * 1000) * 1e6);
  if (frac >= 1e9) frac = 999_999_999;
  return formatModtime(BigInt(sec) * 1_000_000_000n + BigInt(frac));
}

/** True for a modtime parseModtime reads: what a TOC's check needs, without the BigInt arithmetic. */
export const isModtime = (s: string): boolean => RFC3339_RE.test(s);

export function parseModtime(s: string): bigint | undefined {
  const m = RFC3339_RE.exec(s);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  if (Number.isNaN(ms)) return undefined;
  const frac = BigInt((m[7] ?? '').padEnd(9, '0') || '0');
  return BigInt(ms / 1000) * 1_000_000_000n + frac;
}
