import os from 'node:os';
import { defineCommand } from 'citty';
import { usageError } from '../errors.js';
import { HashPool, INLINE_HASH_BYTES } from '../hash/index.js';
import { indexTree, type IndexOptions, type IndexResult } from '../indexer/index.js';
import { encodeToc } from '../toc/index.js';
import { homeArgs, resolveHome, statePathFor, type CliContext } from './context.js';
import { createReporter, formatBytes, type Reporter } from './output.js';

export const indexArgs = {
  ...homeArgs,
  threads: { type: 'string', description: 'Hashing threads (default: one per core)', valueHint: 'N' },
  state: { type: 'string', description: 'Incremental index state file (default: one per directory under the home)', valueHint: 'FILE' },
  'no-state': { type: 'boolean', description: 'Hash every file; neither read nor write the index state' },
} as const;

export function parseThreads(s: string | undefined): number {
  if (s === undefined) return os.availableParallelism();
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw usageError(`--threads takes a whole number from 1 to 1024, not ${JSON.stringify(s)}`);
  return n;
}

/** Indexes `dir` with the options every tree-reading command shares; reports warnings and progress. */
export async function runIndex(dir: string, args: { home?: string; threads?: string; state?: string; 'no-state'?: boolean }, ctx: CliContext, out: Reporter, generation = 0, held?: IndexOptions['held']): Promise<IndexResult> {
  const pool = new HashPool(parseThreads(args.threads), { inlineBytes: INLINE_HASH_BYTES });
  try {
    const home = resolveHome(args.home, ctx);
    const result = await indexTree(dir, {
      pool,
      statePath: args['no-state'] ? undefined : args.state ?? statePathFor(home, dir),
      generation,
      held,
      onWarning: (w) => out.warn(w.message),
      onProgress: (p) => out.progress(p.bytesRead, p.bytesToHash, `hashing ${p.filesDone}/${p.filesToHash} files, ${formatBytes(p.bytesRead)}`),
    });
    out.endProgress();
    return result;
  } finally {
    await pool.close();
  }
}

export function summarize({ toc, stats }: IndexResult): string {
  return [
    `indexed ${stats.entries} entries, ${stats.files} files, ${formatBytes(stats.bytesTotal)} in ${(stats.elapsedMs / 1000).toFixed(2)} s`,
    `read ${formatBytes(stats.bytesRead)} (${stats.bytesRead} bytes): ${stats.filesHashed} files hashed, ${stats.filesReused} unchanged`,
    `root ${toc.root}`,
  ].join('\n');
}

export const createIndexCommand = (ctx: CliContext) => defineCommand({
  meta: {
    name: 'index',
    description: 'Split every file of DIR into BLAKE3-hashed chunks (at most 4 MiB) and build its TOC. Re-runs read only files whose size, mtime, ctime or inode changed.',
  },
  args: {
    dir: { type: 'positional', description: 'Tree to index', default: '.' },
    json: { type: 'boolean', description: 'Print the TOC as JSON on stdout (entries with name, type, size, modtime, mode, linkName, digest, chunks)' },
    ...indexArgs,
  },
  async run({ args }) {
    const out = createReporter(ctx.io, { quiet: args.quiet });
    const result = await runIndex(args.dir, args, ctx, out);
    if (args.json) ctx.io.stdout.write(Buffer.from(encodeToc(result.toc)).toString('utf8') + '\n');
    else if (!args.quiet) ctx.io.stdout.write(summarize(result) + '\n');
    else return;
    if (args.json) out.info(summarize(result));
  },
});
