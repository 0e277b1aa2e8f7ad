import fsp from 'node:fs/promises';
import { defineCommand } from 'citty';
import path from 'node:path';
import { DigestFeed, hashFileForPublish, newStreamName, streamDesc, type ObjectDesc, type PeerAddr, type StreamOrder } from '../agent/index.js';
import { DftfsError, usageError } from '../errors.js';
import { HashPool, INLINE_HASH_BYTES, hashInTurns } from '../hash/index.js';
import { MAX_CHUNK_BYTES } from '../toc/index.js';
import type { CliContext } from './context.js';
import { netArgs, startAgent } from './net-args.js';
import { createReporter, formatBytes } from './output.js';

/** A bcast gives every receiver this long per MiB (a 1 MB/s floor) plus a minute, before giving up on it. */
const BCAST_SLACK_MS = 60_000;

/**
 * A file of more chunks than this is streamed (its order leaves before it is hashed); a smaller
 * one is hashed first (a few ms), and a receiver that holds it already is told so at once.
 */
const BCAST_STREAM_MIN_CHUNKS = 4;

/** The finest chunk grid of a bcast; a chain hop forwards a chunk once it is whole and verified. */
const BCAST_MIN_CHUNK_BYTES = 1024 * 1024;
/** A bcast order carries every chunk digest over NATS (max_payload 1 MiB by default): ~140 bytes each. */
const BCAST_MAX_CHUNKS = 4096;

/**
 * The chunk size of a bcast of `size` bytes: 1 MiB, doubled (up to the TOC's 4 MiB) only to keep
 * the order under BCAST_MAX_CHUNKS. Each hop of the chain holds a chunk back until it is whole, so
 * the last of N receivers ends about N chunk-times after the first. Measured here (200 MiB to a
 * chain of 4 receivers at 400 Mbit, trial runs): receivers finished 0.10-0.20 s apart with 4 MiB
 * chunks, 0.03-0.07 s apart with 1 MiB chunks (2 MiB and 512 KiB gave longer totals). The
 * object's digest is the file's whatever the grid, so a host that holds it already still hardlinks it.
 */
export function bcastChunkBytes(size: number): number {
  let bytes = BCAST_MIN_CHUNK_BYTES;
  while (bytes < MAX_CHUNK_BYTES && size / bytes > BCAST_MAX_CHUNKS) bytes *= 2;
  return bytes;
}

/**
 * Orders receivers into a pipelined chain: origin → host 1 → host 2 → …, one agent per host
 * (the host's other agents share its store). Every link carries the file once, so the last
 * receiver finishes about one chunk-time per hop after S/B, whatever the number of hosts.
 */
export function planChain(origin: PeerAddr, receivers: PeerAddr[]): Array<{ agent: PeerAddr; upstream: PeerAddr[] }> {
  const byHost = new Map<string, PeerAddr[]>();
  for (const r of receivers) byHost.set(r.host, [...(byHost.get(r.host) ?? []), r]);
  const plan: Array<{ agent: PeerAddr; upstream: PeerAddr[] }> = [];
  let prev = origin;
  for (const [, agents] of byHost) {
    const [rep, ...rest] = agents as [PeerAddr, ...PeerAddr[]];
    plan.push({ agent: rep, upstream: prev === origin ? [origin] : [prev, origin] });
    for (const other of rest) plan.push({ agent: other, upstream: [rep, origin] });
    prev = rep;
  }
  return plan;
}

/** Hashes a file to be streamed, handing each digest to the receivers' feed as it is known. */
async function hashStreamed(order: StreamOrder, file: string, feed: DigestFeed): Promise<ObjectDesc> {
  try {
    const desc = streamDesc(order);
    const { digest } = await hashInTurns(path.resolve(file), order.size, order.chunkBytes, (i, d) => {
      desc.chunks[i]!.chunkDigest = d;
      feed.add(i, d);
    });
    feed.finish(digest);
    desc.digest = digest;
    return desc;
  } catch (err) {
    const e = new DftfsError('ERR_DFTFS_FILE_CHANGED', `${file}: ${(err as Error).message}`, { hint: 'send it again once it stops changing', cause: err });
    feed.fail(e);
    throw e;
  }
}

export const createBcastCommand = (ctx: CliContext) => defineCommand({
  meta: {
    name: 'bcast',
    description: 'Make every listed agent hold FILE, at about the speed of one link for all of them at once: receivers form a pipelined chain and forward each chunk as soon as it is verified. A file of more than 4 chunks starts moving while it is still being hashed.',
  },
  args: {
    file: { type: 'positional', description: 'File to broadcast', required: true },
    to: { type: 'string', description: 'Comma-separated host ids or agent ids to send to', valueHint: 'HOST,…' },
    all: { type: 'boolean', description: 'Send to every agent of the cluster' },
    json: { type: 'boolean', description: 'Print per-receiver results as JSON' },
    ...netArgs,
  },
  async run({ args }) {
    if (!args.all && !args.to) throw usageError('say where to send: --to HOST,… or --all');
    const out = createReporter(ctx.io, { quiet: args.quiet || args.json });
    // Phases are timed from the process's start, for --json.
    const at = () => performance.now() / 1000;
    const phases = { agentReady: 0, hashed: 0, found: 0, sent: 0 };
    // A small file is hashed while the agent starts (connects to NATS, opens its peer server) and
    // the receivers are found. A big one is streamed: its order leaves before its hashing ends, and
    // its hashing, on this thread, starts once the agent has (it took ~40 of the ~200 ms the agent
    // needed to start; the receivers need no digest before the order).
    const size = await fsp.stat(args.file).then((st) => (st.isFile() ? st.size : 0), () => 0);
    const chunkBytes = bcastChunkBytes(size);
    const stream = size > BCAST_STREAM_MIN_CHUNKS * chunkBytes ? { name: newStreamName(), size, chunkBytes, feed: new DigestFeed() } : undefined;
    const pool = stream ? undefined : new HashPool(undefined, { inlineBytes: INLINE_HASH_BYTES });
    const hash = () => {
      const h = (stream ? hashStreamed(stream, args.file, stream.feed) : hashFileForPublish(args.file, pool!, chunkBytes))
        .finally(() => { phases.hashed = at(); return pool?.close(); });
      h.catch(() => undefined); // awaited below; a failed start drops it
      return h;
    };
    const early = stream ? undefined : hash();
    const agent = await startAgent(args, ctx, { origin: true }).catch(async (err: unknown) => {
      await pool?.close();
      throw err;
    });
    phases.agentReady = at();
    const hashing = early ?? hash();
    try {
      const wanted = args.to ? new Set(args.to.split(',').map((s) => s.trim()).filter(Boolean)) : undefined;
      const named = (as: PeerAddr[]) => [...wanted!].every((w) => as.some((a) => a.host === w || a.agent === w));
      if (stream) agent.offerStream(args.file, stream.name, stream.feed);
      const published = agent.publishFile(args.file, hashing);
      published.catch(() => undefined); // a stream's receivers hear of a failure first; it is thrown below
      // A streamed file's order needs no digest: only a small file's waits for its hashing here.
      const [everyone] = await Promise.all([
        agent.listAgents(wanted ? named : undefined).then((as) => { phases.found = at(); return as.filter((a) => a.agent !== agent.id); }),
        stream ? undefined : published,
      ]);
      const receivers = wanted ? everyone.filter((a) => wanted.has(a.host) || wanted.has(a.agent)) : everyone;
      if (wanted) {
        const missing = [...wanted].filter((w) => !receivers.some((r) => r.host === w || r.agent === w));
        if (missing.length) throw new DftfsError('ERR_DFTFS_NOT_FOUND', `no agent answers for ${missing.join(', ')}`, { hint: 'start `dftfs agent` there, with the same --nats and --cluster' });
      }
      if (receivers.length === 0) throw new DftfsError('ERR_DFTFS_NOT_FOUND', 'no agent to send to', { hint: 'start `dftfs agent` on the receiving hosts' });
      const plan = planChain(agent.addr, receivers);
      out.info(`bcast ${args.file} (${formatBytes(size)}) to ${receivers.length} agents on ${new Set(receivers.map((r) => r.host)).size} hosts`);
      const started = performance.now();
      const timeout = BCAST_SLACK_MS + size / 1000;
      const order = async (target: PeerAddr, upstream: PeerAddr[], sameHostAs: Promise<unknown> | undefined) => {
        // A host's other agents share its store: once its first agent holds the file, they are
        // told its digest and find it there (a stream has no digest to look for until then).
        if (sameHostAs) await sameHostAs.catch(() => undefined);
        const body = stream && !sameHostAs ? { stream: { name: stream.name, size: stream.size, chunkBytes: stream.chunkBytes }, upstream } : { desc: await published, upstream };
        return agent.bus.request(agent.bus.subject('agent', target.agent.replace(/[.*> ]/g, '_'), 'fetch'), body, timeout);
      };
      const byHost = new Map<string, Promise<unknown>>();
      const results = await Promise.all(plan.map(async ({ agent: target, upstream }) => {
        const asked = order(target, upstream, stream ? byHost.get(target.host) : undefined);
        if (!byHost.has(target.host)) byHost.set(target.host, asked);
        try {
          const r = await asked;
          const s = (performance.now() - started) / 1000;
          out.info(`  ${target.agent}: ${String(r.how)} after ${s.toFixed(2)} s`);
          return { agent: target.agent, host: target.host, ok: true, how: r.how, received: r.received, seconds: s };
        } catch (err) {
          out.warn(`${target.agent}: ${(err as Error).message}`);
          return { agent: target.agent, host: target.host, ok: false, error: (err as Error).message, seconds: (performance.now() - started) / 1000 };
        }
      }));
      const total = (performance.now() - started) / 1000;
      phases.sent = at();
      const desc = await published;
      if (args.json) ctx.io.stdout.write(JSON.stringify({ digest: desc.digest, bytes: desc.size, chunks: desc.chunks.length, streamed: stream !== undefined, seconds: total, phases, receivers: results }) + '\n');
      else out.info(`done in ${total.toFixed(2)} s: ${results.filter((r) => r.ok).length}/${results.length} agents hold ${desc.digest}`);
      const failed = results.filter((r) => !r.ok);
      if (failed.length) throw new DftfsError('ERR_DFTFS_UNAVAILABLE', `${failed.length} of ${results.length} receivers did not get the file`);
    } finally {
      await pool?.close();
      await agent.close();
    }
  },
});
