import { defineCommand } from 'citty';
import type { CliContext } from './context.js';
import { indexArgs, runIndex } from './index-cmd.js';
import { netArgs, startAgent, untilSignal } from './net-args.js';
import { createReporter, formatBytes } from './output.js';

export const createServeCommand = (ctx: CliContext) => defineCommand({
  meta: {
    name: 'serve',
    description: 'Publish a tree: index DIR, announce its TOC on the cluster, and serve its chunks (verified on every read) until Ctrl-C.',
  },
  args: {
    dir: { type: 'positional', description: 'Tree to publish', default: '.' },
    ...netArgs,
    threads: indexArgs.threads,
    state: indexArgs.state,
  },
  async run({ args }) {
    const out = createReporter(ctx.io, { quiet: args.quiet });
    const { toc, stats } = await runIndex(args.dir, args, ctx, out);
    const agent = await startAgent(args, ctx, { origin: true });
    try {
      const { digest } = await agent.publishTree(args.dir, toc);
      ctx.io.stdout.write(`serving ${args.dir}: ${stats.files} files, ${formatBytes(stats.bytesTotal)}, root ${toc.root}\n`);
      ctx.io.stdout.write(`toc ${digest}\nnats ${agent.natsUrl}\nagent ${agent.id} at ${agent.addr.ip}:${agent.addr.port}\n`);
      const sig = await untilSignal();
      out.info(`${sig}: stopping`);
    } finally {
      await agent.close();
    }
  },
});
