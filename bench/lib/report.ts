import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { EXTRA_CA_CERTS } from './procs.js';

/** Where committed results live ($DFTFS_BENCH_RESULTS elsewhere: the harness's own test writes to a temp dir). */
export const resultsDir = () => process.env.DFTFS_BENCH_RESULTS ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../bench/results');

export interface Table {
  columns: string[];
  rows: Array<Array<string | number>>;
}

export function markdownTable(t: Table): string {
  const fmt = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v);
  return [
    `| ${t.columns.join(' | ')} |`,
    `| ${t.columns.map(() => '---').join(' | ')} |`,
    ...t.rows.map((r) => `| ${r.map(fmt).join(' | ')} |`),
  ].join('\n');
}

/** A short description of the machine a result was measured on. */
export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  let kernel = os.release();
  try { kernel = execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim(); } catch { /* keep os.release() */ }
  const env = EXTRA_CA_CERTS ? ' (NODE_EXTRA_CA_CERTS, set on this machine, unset for everything timed: it costs every Node start ~70 ms)' : '';
  return `${os.availableParallelism()} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${kernel}, Node ${process.version}${env}`;
}

export interface BarSeries {
  label: string;
  value: number;
}

/** A horizontal bar chart as SVG: one bar per series, value printed at the end of each bar. */
export function barChartSvg(title: string, unit: string, bars: BarSeries[]): string {
  const W = 720, rowH = 34, left = 260, top = 40, right = 110;
  const H = top + bars.length * rowH + 20;
  const max = Math.max(...bars.map((b) => b.value), 1e-9);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const rows = bars.map((b, i) => {
    const y = top + i * rowH;
    const w = ((W - left - right) * b.value) / max;
    return `<text x="${left - 8}" y="${y + 21}" text-anchor="end">${esc(b.label)}</text>` +
      `<rect x="${left}" y="${y + 6}" width="${w.toFixed(1)}" height="${rowH - 12}" fill="#4a78b5"/>` +
      `<text x="${left + w + 6}" y="${y + 21}">${b.value.toFixed(b.value < 10 ? 2 : 0)} ${esc(unit)}</text>`;
  }).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>
${rows}
</svg>
`;
}

/** Writes NAME.md, NAME.json and (when given) NAME.svg under bench/results/. */
export function writeResult(name: string, md: string, json: unknown, svg?: string): void {
  const dir = resultsDir();
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${name}.md`), md);
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(json, null, 2) + '\n');
  if (svg) fs.writeFileSync(path.join(dir, `${name}.svg`), svg);
}

export interface LineSeries {
  label: string;
  points: Array<[number, number]>;
}

const PALETTE = ['#d62728', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#7f7f7f'];

/** A line plot as SVG (x: e.g. number of hosts, y: seconds), one line and legend entry per series. */
export function lineChartSvg(title: string, xLabel: string, yLabel: string, series: LineSeries[]): string {
  const W = 720, H = 440, left = 70, right = 190, top = 40, bottom = 50;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xMin = Math.min(...xs, 0), xMax = Math.max(...xs, 1);
  const yMax = Math.max(...ys, 1e-9) * 1.08;
  const X = (x: number) => left + ((x - xMin) / (xMax - xMin || 1)) * (W - left - right);
  const Y = (y: number) => H - bottom - (y / yMax) * (H - top - bottom);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const yTicks = Array.from({ length: 6 }, (_, i) => (yMax * i) / 5);
  const xTicks = [...new Set(xs)].sort((a, b) => a - b);
  const axes = [
    `<line x1="${left}" y1="${H - bottom}" x2="${W - right}" y2="${H - bottom}" stroke="black"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${H - bottom}" stroke="black"/>`,
    ...yTicks.map((t) => `<text x="${left - 6}" y="${Y(t) + 4}" text-anchor="end">${t < 10 ? t.toFixed(1) : t.toFixed(0)}</text>` +
      `<line x1="${left}" y1="${Y(t)}" x2="${W - right}" y2="${Y(t)}" stroke="#ddd"/>`),
    ...xTicks.map((t) => `<text x="${X(t)}" y="${H - bottom + 18}" text-anchor="middle">${t}</text>`),
    `<text x="${(left + W - right) / 2}" y="${H - 10}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text x="16" y="${(top + H - bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(top + H - bottom) / 2})">${esc(yLabel)}</text>`,
  ];
  const lines = series.map((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    const d = pts.map((p, j) => `${j ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ');
    const ly = top + 10 + i * 22;
    return `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.label.startsWith('floor') ? ' stroke-dasharray="6 4"' : ''}/>` +
      pts.map((p) => `<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="3.5" fill="${color}"/>`).join('') +
      `<line x1="${W - right + 14}" y1="${ly}" x2="${W - right + 38}" y2="${ly}" stroke="${color}" stroke-width="2"/>` +
      `<text x="${W - right + 44}" y="${ly + 4}">${esc(s.label)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${(left + W - right) / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>
${axes.join('\n')}
${lines.join('\n')}
</svg>
`;
}

/** One system's measured time at one cluster size. */
export interface SystemRun {
  system: string;
  workers: number;
  seconds: number;
  /** CPU-seconds the whole machine spent during the run (every process and the kernel), where measured. */
  cpuSeconds?: number;
  /** Anything else worth keeping (per-receiver times, how bytes moved …). */
  detail?: Record<string, unknown>;
}

/**
 * The comparison table of a cluster scenario: per cluster size, each system's time, its ratio to
 * the physical floor, how many times longer each baseline took than dftfs, and (where runs
 * measured it) the machine's CPU-seconds during the run.
 */
export function comparisonTable(runs: SystemRun[], floorS: (workers: number) => number | undefined): Table {
  const rows: Table['rows'] = [];
  const withCpu = runs.some((r) => r.cpuSeconds !== undefined);
  for (const n of [...new Set(runs.map((r) => r.workers))].sort((a, b) => a - b)) {
    const at = runs.filter((r) => r.workers === n);
    const mine = at.find((r) => r.system === 'dftfs');
    const floor = floorS(n);
    for (const r of at) {
      rows.push([
        n, r.system, r.seconds,
        floor ? r.seconds / floor : '–',
        mine && r.system !== 'dftfs' ? r.seconds / mine.seconds : '–',
        ...(withCpu ? [r.cpuSeconds ?? '–'] : []),
      ]);
    }
  }
  return { columns: ['workers', 'system', 'time (s)', 'time / floor', 'time / dftfs time', ...(withCpu ? ['machine CPU-s'] : [])], rows };
}

/** Series for lineChartSvg: time vs workers per system (plus the floor when there is one). */
export function seriesByWorkers(runs: SystemRun[], floorS?: (workers: number) => number | undefined): LineSeries[] {
  const systems = [...new Set(runs.map((r) => r.system))];
  const out = systems.map((s) => ({ label: s, points: runs.filter((r) => r.system === s).map((r) => [r.workers, r.seconds] as [number, number]) }));
  if (floorS) {
    const ns = [...new Set(runs.map((r) => r.workers))];
    const pts = ns.map((n) => [n, floorS(n)] as [number, number | undefined]).filter((p): p is [number, number] => p[1] !== undefined);
    if (pts.length) out.push({ label: 'floor S/B', points: pts });
  }
  return out;
}
