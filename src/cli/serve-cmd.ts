import { defineCommand } from 'citty';
import { TreePublisher } from '../agent/index.js';
import { usageError } from '../errors.js';
import { collectGarbage } from '../memory.js';
import type { CliContext } from './context.js';
import { indexArgs, runIndex } from './index-cmd.js';
import { netArgs, startAgent, untilSignal } from './net-args.js';
import { createReporter, formatBytes } from './output.js';

export const createServeCommand = (ctx: CliContext) => defineCommand({
  meta: {
    name: 'serve',
    description: 'Publish a tree: index DIR, announce its TOC on the cluster, and serve its chunks (verified on every read) until Ctrl-C. SIGHUP (or --watch) re-indexes and announces the next generation when the tree changed.',
  },
  args: {
    dir: { type: 'positional', description: 'Tree to publish', default: '.' },
    ...netArgs,
    threads: indexArgs.threads,
    state: indexArgs.state,
    watch: { type: 'string', description: 'Re-index every SECONDS and announce the tree if it changed (default: only on SIGHUP)', valueHint: 'SECONDS' },
  },
  async run({ args }) {
    const out = createReporter(ctx.io, { quiet: args.quiet });
    const watchS = args.watch === undefined ? undefined : Number(args.watch);
    if (watchS !== undefined && !(watchS >= 0.1 && watchS <= 86400)) throw usageError(`--watch takes seconds from 0.1 to 86400, not ${JSON.stringify(args.watch)}`);
    const agent = await startAgent(args, ctx, { origin: true });
    const say = (l: string) => ctx.io.stdout.write(l + '\n');
    const held = {};
    const publisher = new TreePublisher(agent, args.dir, async (generation) => runIndex(args.dir, args, ctx, out, generation, held));
    let timer: NodeJS.Timeout | undefined;
    const onHup = () => void republish();
    const republish = async () => {
      try {
        const p = await publisher.publish();
        if (p.changed) say(`generation ${p.generation} root ${p.root} toc ${p.tocDigest}`);
        if (p.indexed) collectGarbage();
      } catch (err) {
        out.warn(`re-index failed: ${(err as Error).message}`);
      }
    };
    try {
      const first = await publisher.publish();
      collectGarbage();
      const files = first.toc!.entries.filter((e) => e.type === 'reg'); // a first publication indexes the tree
      const bytes = files.reduce((n, e) => n + e.size!, 0);
      for (const l of [`serving ${args.dir}: ${files.length} files, ${formatBytes(bytes)}, root ${first.root}`, `toc ${first.tocDigest}`, `generation ${first.generation}`,
        `nats ${agent.natsUrl}`, `agent ${agent.id} at ${agent.addr.ip}:${agent.addr.port}`]) say(l);
      process.on('SIGHUP', onHup);
      if (watchS) timer = setInterval(onHup, watchS * 1000);
      const sig = await untilSignal();
      out.info(`${sig}: stopping`);
    } finally {
      clearInterval(timer);
      process.off('SIGHUP', onHup);
      await agent.close();
    }
  },
});

