/**
 * Modification times as RFC 3339 strings with nanoseconds (what eStargz writes), converted from
 * and to nanoseconds since the epoch. Make compares mtimes, so no precision may be lost.
 */

const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/;

export function formatModtime(ns: bigint): string {
  const sec = ns >= 0n ? ns / 1_000_000_000n : (ns - 999_999_999n) / 1_000_000_000n;
  const frac = ns - sec * 1_000_000_000n;
  const base = new Date(Number(sec) * 1000).toISOString().slice(0, 19);
  return `${base}.${frac.toString().padStart(9, '0')}Z`;
}

export function parseModtime(s: string): bigint | undefined {
  const m = RFC3339_RE.exec(s);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  if (Number.isNaN(ms)) return undefined;
  const frac = BigInt((m[7] ?? '').padEnd(9, '0') || '0');
  return BigInt(ms / 1000) * 1_000_000_000n + frac;
}
