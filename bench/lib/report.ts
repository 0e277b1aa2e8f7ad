import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

/** Where committed results live. */
export const RESULTS_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../bench/results');

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
  return `${os.availableParallelism()} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${kernel}, Node ${process.version}`;
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
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(path.join(RESULTS_DIR, `${name}.md`), md);
  fs.writeFileSync(path.join(RESULTS_DIR, `${name}.json`), JSON.stringify(json, null, 2) + '\n');
  if (svg) fs.writeFileSync(path.join(RESULTS_DIR, `${name}.svg`), svg);
}
