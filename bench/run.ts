/**
 * `npm run bench -- <scenario> [--dir DIR]`: runs one benchmark scenario and writes its table,
 * JSON and plot under bench/results/.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';

const SCENARIOS: Record<string, () => Promise<{ run(opts: { dir: string }): Promise<void> }>> = {
  'index-hash': () => import('./scenarios/index-hash.js'),
  reindex: () => import('./scenarios/reindex.js'),
  'mount-local': () => import('./scenarios/mount-local.js'),
  'make-overhead': () => import('./scenarios/make-overhead.js'),
  'make-parallel': () => import('./scenarios/make-parallel.js'),
};

const args = process.argv.slice(2);
const name = args.find((a) => !a.startsWith('-'));
const dirAt = args.indexOf('--dir');
if (!name || !(name in SCENARIOS)) {
  process.stderr.write(`usage: npm run bench -- <scenario> [--dir DIR]\nscenarios: ${Object.keys(SCENARIOS).join(', ')}\n`);
  process.exit(2);
}
const dir = dirAt >= 0 ? path.resolve(args[dirAt + 1]!) : fs.mkdtempSync(path.join(os.tmpdir(), 'dftfs-bench-'));
fs.mkdirSync(dir, { recursive: true });
try {
  await (await SCENARIOS[name]!()).run({ dir });
} finally {
  if (dirAt < 0) fs.rmSync(dir, { recursive: true, force: true });
}
