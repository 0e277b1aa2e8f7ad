import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { defineCommand } from 'citty';
import { exportTree } from '../archive/index.js';
import type { CliContext } from './context.js';
import { indexArgs, runIndex } from './index-cmd.js';
import { createReporter, formatBytes } from './output.js';

export const createExportCommand = (ctx: CliContext) => defineCommand({
  meta: {
    name: 'export',
    description: 'Write a tree version of DIR as one tar (its TOC as the first entry), to seed a host store offline or archive a version. The archive appears only when complete.',
  },
  args: {
    dir: { type: 'positional', description: 'Tree to export', required: true },
    archive: { type: 'positional', description: 'Tar file to write, or - for stdout', required: true },
    ...indexArgs,
  },
  async run({ args }) {
    const out = createReporter(ctx.io, { quiet: args.quiet || args.archive === '-' && !ctx.io.stderr.isTTY });
    const { toc, stats } = await runIndex(args.dir, args, ctx, out);
    const dir = path.resolve(args.dir);
    if (args.archive === '-') {
      await exportTree(dir, toc, ctx.io.stdout as NodeJS.WritableStream as fs.WriteStream);
      return;
    }
    const dest = path.resolve(args.archive);
    const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      const res = await exportTree(dir, toc, fs.createWriteStream(tmp));
      await fsp.rename(tmp, dest);
      out.info(`exported ${res.entries} entries, ${formatBytes(res.bytes)} of file data to ${args.archive} (read ${formatBytes(stats.bytesRead)} to index)`);
      out.info(`root ${toc.root}`);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  },
});
