import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { defineCommand } from 'citty';
import { Agent, parseDesc, type ObjectDesc } from '../agent/index.js';
import { DftfsError, usageError } from '../errors.js';
import { isDigest, type Digest } from '../hash/index.js';
import { checkEntryName, decodeToc } from '../toc/index.js';
import type { CliContext } from './context.js';
import { netArgs, startAgent } from './net-args.js';
import { createReporter, formatBytes } from './output.js';

/** Finds a path in the cluster's latest published TOC. */
async function resolvePath(agent: Agent, name: string): Promise<ObjectDesc> {
  const rel = name.replace(/^\.?\/+/, '');
  checkEntryName(rel);
  let latest;
  try {
    latest = await agent.bus.request(agent.bus.subject('toc', 'latest'), {});
  } catch (err) {
    throw new DftfsError('ERR_DFTFS_NOT_FOUND', `no tree is published on cluster ${agent.opts.cluster}`, {
      hint: 'start `dftfs serve DIR` (with the same --nats and --cluster), or fetch by digest', cause: err,
    });
  }
  const tocDesc = parseDesc(latest.desc);
  await agent.fetch(tocDesc);
  const toc = decodeToc(await agent.store.read(tocDesc.digest));
  let e = toc.entries.find((x) => x.name === rel);
  if (e?.type === 'hardlink') e = toc.entries.find((x) => x.name === e!.linkName);
  if (!e) throw new DftfsError('ERR_DFTFS_NOT_FOUND', `${rel}: not in the published tree (root ${toc.root})`);
  if (e.type !== 'reg') throw new DftfsError('ERR_DFTFS_NOT_FOUND', `${rel}: is a ${e.type}, not a regular file`);
  return { digest: e.digest!, size: e.size!, chunks: e.chunks! };
}

export const createGetCommand = (ctx: CliContext) => defineCommand({
  meta: {
    name: 'get',
    description: 'Fetch one file from the cluster, by its path in the published tree or by digest, verified chunk by chunk, into DEST (atomically). DEST is a hardlink into the host store (zero copy, read-only) unless --copy.',
  },
  args: {
    source: { type: 'positional', description: 'Path in the published tree, or blake3:<hex>', required: true },
    dest: { type: 'positional', description: 'Where to put the file', required: true },
    copy: { type: 'boolean', description: 'Write a private, writable copy instead of a hardlink into the store' },
    json: { type: 'boolean', description: 'Print the result as JSON' },
    ...netArgs,
  },
  async run({ args }) {
    const out = createReporter(ctx.io, { quiet: args.quiet || args.json });
    const agent = await startAgent(args, ctx);
    try {
      const desc = isDigest(args.source) ? await agent.describe(args.source as Digest) : await resolvePath(agent, args.source);
      const progress = setInterval(() => {
        const t = agent.status.snapshot().transfers.find((x) => x.object === desc.digest);
        if (t) out.progress(t.bytes, t.size, `${formatBytes(t.bytes)} of ${formatBytes(t.size)}, ${formatBytes(t.rateBytesPerSec)}/s`);
      }, 200);
      let r;
      try {
        r = await agent.fetch(desc);
      } finally {
        clearInterval(progress);
        out.endProgress();
      }
      const dest = path.resolve(args.dest);
      const target = fs.existsSync(dest) && fs.statSync(dest).isDirectory() ? path.join(dest, path.basename(args.source)) : dest;
      let placed: string;
      if (args.copy) {
        const tmp = `${target}.dftfs-${process.pid}`;
        await fsp.copyFile(agent.store.objectPath(desc.digest), tmp, fs.constants.COPYFILE_FICLONE);
        await fsp.chmod(tmp, 0o644);
        await fsp.rename(tmp, target);
        placed = 'copy';
      } else {
        placed = await agent.store.linkTo(desc.digest, target);
      }
      const summary = { digest: desc.digest, dest: target, bytes: desc.size, how: r.how, placed, seconds: r.ms / 1000, bytesFrom: r.bytesFrom, retries: r.retries, busy: r.busy };
      if (args.json) ctx.io.stdout.write(JSON.stringify(summary) + '\n');
      else out.info(`${target}: ${formatBytes(desc.size)} ${r.how === 'network' ? `fetched in ${(r.ms / 1000).toFixed(2)} s` : r.how === 'host' ? 'shared from this host\'s store' : 'already in this host\'s store'} (${placed})`);
    } finally {
      await agent.close();
    }
  },
});

