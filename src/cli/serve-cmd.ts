import { defineCommand } from 'citty';
import type { CliContext } from './context.js';
import { indexArgs, runIndex } from './index-cmd.js';
import { netArgs, serveUntilSignal, startAgent } from './net-args.js';
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
    let digest: string;
    try {
      ({ digest } = await agent.publishTree(args.dir, toc));
    } catch (err) {
      await agent.close();
      throw err;
    }
    await serveUntilSignal(agent, ctx, [`serving ${args.dir}: ${stats.files} files, ${formatBytes(stats.bytesTotal)}, root ${toc.root}`, `toc ${digest}`], (s) => out.info(s));
  },
});
