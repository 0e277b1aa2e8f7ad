/** `--name value` options of a benchmark scenario. */
export class BenchArgs {
  constructor(private readonly argv: string[]) {}

  str(name: string, def: string): string {
    const i = this.argv.indexOf(`--${name}`);
    if (i < 0) return def;
    const v = this.argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
    return v;
  }

  /** A comma-separated list of whole numbers, e.g. --workers 2,4,8. */
  ints(name: string, def: number[]): number[] {
    const s = this.str(name, def.join(','));
    const ns = s.split(',').map(Number);
    if (ns.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${name} takes whole numbers like 2,4,8, not ${s}`);
    return ns;
  }

  list(name: string, def: string[]): string[] {
    return this.str(name, def.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  }

  /** A size like 200m, 1g, 4k (bytes, powers of 1024). */
  bytes(name: string, def: string): number {
    const s = this.str(name, def);
    const m = /^(\d+)([kmg]?)$/i.exec(s);
    if (!m) throw new Error(`--${name} takes a size like 200m or 1g, not ${s}`);
    return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g']);
  }

  has(name: string): boolean { return this.argv.includes(`--${name}`); }
}
