import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defineCommand } from 'citty';
import { Agent, Arrivals, batchable, CHAIN_WAIT_MS, descOf, parseDesc, parsePeerAddr, type BatchSummary, type ObjectDesc, type PeerAddr } from '../agent/index.js';
import { DftfsError, usageError } from '../errors.js';
import { digestBytes, isDigest, type Digest } from '../hash/index.js';
import { subtree, TreeWriter } from '../store/index.js';
import { checkEntryName, decodeToc, type Toc, type TocEntry } from '../toc/index.js';
import type { CliContext } from './context.js';
import { netArgs, startAgent } from './net-args.js';
import { createReporter, formatBytes, type Reporter } from './output.js';

/** The cluster's latest published TOC and the agent that published it. */
async function latestTree(agent: Agent): Promise<{ toc: Toc; origin: PeerAddr | undefined }> {
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
  return { toc: decodeToc(await agent.store.read(tocDesc.digest)), origin: parsePeerAddr(latest.origin) };
}

/** A batch's name for the tracker: the digest of its objects' digests, in order (receivers of the same batch agree on it). */
function batchName(descs: ObjectDesc[]): Digest {
  return digestBytes(Buffer.from(`dftfs batch\n${descs.map((d) => d.digest).join('\n')}`));
}

/** Finds a path in a TOC: a regular file (a hardlink is its target) or a directory. */
function lookup(toc: Toc, name: string): TocEntry {
  const rel = name.replace(/^(\.?\/+)+/, '').replace(/\/+$/, '') || '.';
  checkEntryName(rel);
  let e = toc.entries.find((x) => x.name === rel);
  if (e?.type === 'hardlink') e = toc.entries.find((x) => x.name === e!.linkName);
  if (!e) throw new DftfsError('ERR_DFTFS_NOT_FOUND', `${rel}: not in the published tree (root ${toc.root})`);
  if (e.type !== 'reg' && e.type !== 'dir') throw new DftfsError('ERR_DFTFS_NOT_FOUND', `${rel}: is a ${e.type}, not a regular file or a directory`);
  return e;
}

/**
 * Fetches a directory of the published tree into `dest` (created if needed; files already there
 * are replaced). Copies: the small files come in one batch from the tree's origin and are written
 * straight into `dest` from memory (a store object as well would double the file creations, the
 * dominant cost of small files); the rest go through the host store. With `link`, every file goes
 * through the store and is hardlinked from it.
 */
async function getTree(agent: Agent, toc: Toc, origin: PeerAddr | undefined, dir: string, dest: string, opts: { link: boolean; jobs?: number; out: Reporter; undo: Set<() => void> }) {
  const started = performance.now();
  const entries = subtree(toc, dir);
  const writer = await TreeWriter.open(entries, dest);
  const abort = () => writer.abort();
  opts.undo.add(abort);
  const byDigest = new Map<Digest, TocEntry[]>();
  for (const e of entries) if (e.type === 'reg' && e.size) (byDigest.get(e.digest!) ?? byDigest.set(e.digest!, []).get(e.digest!)!).push(e);
  const descs = [...byDigest.values()].map((es) => descOf(es[0]!));
  const total = descs.reduce((n, d) => n + d.size, 0);
  let done = 0;
  let count = 0;
  const progress = (d: ObjectDesc) => {
    done += d.size;
    count++;
    opts.out.progress(done, total, `${count} of ${descs.length} files, ${formatBytes(done)} of ${formatBytes(total)}`);
  };
  const held = agent.store.hasMany(descs.map((d) => d.digest));
  const direct = new Set(opts.link || !origin ? [] : descs.filter((d) => batchable(d) && !held.has(d.digest)));
  const fetched: BatchSummary = { objects: descs.length, fetched: 0, bytes: 0, bytesFrom: {} };
  const addFrom = (from: string, bytes: number) => void (fetched.bytesFrom[from] = (fetched.bytesFrom[from] ?? 0) + bytes);
  let refused: Array<{ name: string; reason: string }>;
  const many = (list: ObjectDesc[]) => agent.fetchMany(list, { hints: origin ? [origin] : [], jobs: opts.jobs, onDone: progress, descFromOrigin: true });
  try {
    // The bigger files are fetched beside the batch: receivers that start together take most of
    // their chunks from each other (chainUpstream in fetcher.ts) while the batch keeps the origin's
    // link busy. One after the other, the mixed tree of bench tree took 8.3-9.5 s to 4 workers
    // instead of 7.0-7.7 s.
    const bigger = many(descs.filter((d) => !direct.has(d)));
    bigger.catch(() => undefined); // awaited below
    if (direct.size) {
      // Receivers of the same batch chain behind each other: each serves the small files it has
      // written to the next one, as they arrive, and the origin sends the batch about once.
      const arrivals = new Arrivals(new Set([...direct].map((d) => d.digest)));
      agent.shareArrivals(arrivals);
      try {
        const sink = {
          putVerified: async (bytes: Uint8Array, digest: Digest) => {
            for (const e of byDigest.get(digest)!) writer.writeSync(e, bytes);
            arrivals.arrived(digest, bytes);
          },
        };
        const settledFrom = (from: PeerAddr) => (d: ObjectDesc, ok: boolean) => {
          if (!ok) return;
          direct.delete(d);
          fetched.fetched++;
          fetched.bytes += d.size;
          addFrom(from.agent, d.size);
          progress(d);
        };
        const ahead = await agent.receiverAhead(batchName([...direct]));
        if (ahead) await agent.fetchBatchInto(sink, ahead, [...direct], settledFrom(ahead), CHAIN_WAIT_MS);
        // What the receiver ahead did not deliver (it died, fell behind, or there is none): from the origin.
        if (direct.size) await agent.fetchBatchInto(sink, origin!, [...direct], settledFrom(origin!));
      } finally {
        arrivals.end();
      }
    }
    // What the batch's holder did not deliver goes through the normal fetch (discovery, other sources).
    for (const m of await Promise.all([bigger, many([...direct])]).finally(() => opts.out.endProgress())) {
      fetched.fetched += m.fetched;
      fetched.bytes += m.bytes;
      for (const [from, n] of Object.entries(m.bytesFrom)) addFrom(from, n);
    }
    ({ refused } = await writer.finish(agent.store, opts.link));
  } catch (err) {
    writer.abort();
    throw err;
  } finally {
    opts.undo.delete(abort);
  }
  for (const r of refused) opts.out.warn(`${r.name}: not written: ${r.reason}`);
  return {
    entries: entries.length, files: descs.length, bytes: total, fetched: fetched.fetched, fetchedBytes: fetched.bytes, bytesFrom: fetched.bytesFrom,
    refused: refused.length, seconds: (performance.now() - started) / 1000,
  };
}

export const createGetCommand = (ctx: CliContext) => defineCommand({
  meta: {
    name: 'get',
    description: 'Fetch a file or a directory from the cluster, by its path in the published tree (or a file by digest), verified chunk by chunk, into DEST (atomically: a new directory appears whole, files in an existing one one by one; Ctrl-C leaves nothing half-written). A file becomes a hardlink into the host store (zero copy, read-only) unless --copy. A directory becomes DEST, a copy with modes and times kept (set-id bits dropped; symlinks pointing outside it are left out, with a warning), or hardlinks into the store with --link.',
  },
  args: {
    source: { type: 'positional', description: 'Path in the published tree, or blake3:<hex>', required: true },
    dest: { type: 'positional', description: 'Where to put the file', required: true },
    copy: { type: 'boolean', description: 'A file: write a private, writable copy instead of a hardlink into the store' },
    link: { type: 'boolean', description: 'A directory: hardlink its files into the store (zero copy, read-only, store modes and times) instead of copying them' },
    json: { type: 'boolean', description: 'Print the result as JSON' },
    ...netArgs,
  },
  async run({ args }) {
    const out = createReporter(ctx.io, { quiet: args.quiet || args.json });
    const agent = await startAgent(args, ctx);
    // Ctrl-C or SIGTERM: what is half-written goes (a new tree's temp directory, a copy's temp
    // file), the agent stops (an embedded nats-server with it), and the exit status says which signal.
    const undo = new Set<() => void>();
    const onSignal = (sig: NodeJS.Signals) => {
      for (const f of undo) f();
      out.warn(`${sig}: stopped; nothing half-written is left at ${path.resolve(args.dest)}`);
      void agent.close().finally(() => process.exit(128 + (os.constants.signals[sig] ?? 0)));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      let desc: ObjectDesc;
      // By digest, the descriptor comes from whichever peer answered: the whole file is re-hashed.
      const byDigest = isDigest(args.source);
      if (byDigest) desc = await agent.describe(args.source as Digest);
      else {
        const { toc, origin } = await latestTree(agent);
        const e = lookup(toc, args.source);
        if (e.type === 'dir') {
          const r = await getTree(agent, toc, origin, e.name, path.resolve(args.dest), { link: Boolean(args.link), jobs: agent.opts.jobs, out, undo });
          const summary = { dest: path.resolve(args.dest), root: toc.root, ...r };
          if (args.json) ctx.io.stdout.write(JSON.stringify(summary) + '\n');
          else out.info(`${summary.dest}: ${r.entries} entries, ${r.files} distinct files (${formatBytes(r.bytes)}); ${r.fetched} fetched (${formatBytes(r.fetchedBytes)}), the rest already on this host; ${r.seconds.toFixed(2)} s`);
          if (r.refused) ctx.exitCode = 1;
          return;
        }
        desc = descOf(e);
      }
      const progress = setInterval(() => {
        const t = agent.status.snapshot().transfers.find((x) => x.object === desc.digest);
        if (t) out.progress(t.bytes, t.size, `${formatBytes(t.bytes)} of ${formatBytes(t.size)}, ${formatBytes(t.rateBytesPerSec)}/s`);
      }, 200);
      let r;
      try {
        r = await agent.fetch(desc, { descFromOrigin: !byDigest });
      } finally {
        clearInterval(progress);
        out.endProgress();
      }
      const dest = path.resolve(args.dest);
      const target = fs.existsSync(dest) && fs.statSync(dest).isDirectory() ? path.join(dest, path.basename(args.source)) : dest;
      let placed: string;
      if (args.copy) {
        const tmp = `${target}.dftfs-${process.pid}`;
        const removeTmp = () => fs.rmSync(tmp, { force: true });
        undo.add(removeTmp);
        try {
          await fsp.copyFile(agent.store.objectPath(desc.digest), tmp, fs.constants.COPYFILE_FICLONE);
          await fsp.chmod(tmp, 0o644);
          await fsp.rename(tmp, target);
        } catch (err) {
          removeTmp();
          throw err;
        } finally {
          undo.delete(removeTmp);
        }
        placed = 'copy';
      } else {
        placed = await agent.store.linkTo(desc.digest, target);
      }
      const summary = { digest: desc.digest, dest: target, bytes: desc.size, how: r.how, placed, seconds: r.ms / 1000, bytesFrom: r.bytesFrom, retries: r.retries, busy: r.busy };
      if (args.json) ctx.io.stdout.write(JSON.stringify(summary) + '\n');
      else out.info(`${target}: ${formatBytes(desc.size)} ${r.how === 'network' ? `fetched in ${(r.ms / 1000).toFixed(2)} s` : r.how === 'host' ? 'shared from this host\'s store' : 'already in this host\'s store'} (${placed})`);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await agent.close();
    }
  },
});

