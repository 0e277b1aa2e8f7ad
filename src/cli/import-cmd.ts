import fs from 'node:fs';
import path from 'node:path';
import { defineCommand } from 'citty';
import { DftfsError } from '../errors.js';
import { importArchive } from '../archive/index.js';
import { materialize } from '../store/index.js';
import { homeArgs, openStore, resolveHome, type CliContext } from './context.js';
import { createReporter, formatBytes } from './output.js';

export const createImportCommand = (ctx: CliContext) => defineCommand({
  meta: {
    name: 'import',
    description: 'Read a dftfs archive into the host store, verifying every digest; with --to, also write the tree out. Entries escaping the tree (.., absolute paths, links out) are refused.',
  },
  args: {
    archive: { type: 'positional', description: 'Tar file written by dftfs export, or - for stdin', required: true },
    to: { type: 'string', description: 'Also write the tree into this directory', valueHint: 'DIR' },
    ...homeArgs,
  },
  async run({ args }) {
    const out = createReporter(ctx.io, { quiet: args.quiet });
    const store = await openStore(resolveHome(args.home, ctx));
    const input = args.archive === '-' ? process.stdin : fs.createReadStream(path.resolve(args.archive));
    const res = await importArchive(input, store);
    for (const r of res.refused) out.warn(`refused ${JSON.stringify(r.name)}: ${r.reason}`);
    if (args.to) await materialize(res.toc.entries, store, args.to, { skip: new Set(res.refused.map((r) => r.name.replace(/\/+$/, ''))) });
    ctx.io.stdout.write(`${res.tocDigest}\n`);
    out.info(`imported ${res.toc.entries.length} entries, ${formatBytes(res.bytes)} verified, ${res.objectsWritten} new objects in ${store.root}`);
    if (res.refused.length) {
      throw new DftfsError('ERR_DFTFS_MALFORMED_ARCHIVE', `${res.refused.length} archive entries were refused`, { hint: 'the rest was imported; the refused entries are listed above' });
    }
  },
});
