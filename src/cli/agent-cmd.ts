import { defineCommand } from 'citty';
import type { CliContext } from './context.js';
import { netArgs, serveUntilSignal, startAgent } from './net-args.js';
import { createReporter } from './output.js';

export const createAgentCommand = (ctx: CliContext) => defineCommand({
  meta: {
    name: 'agent',
    description: 'Run an agent with no tree and no mount: it receives, stores and serves objects for its host (a relay or cache host, and the target of bcast) until Ctrl-C.',
  },
  args: { ...netArgs },
  async run({ args }) {
    const out = createReporter(ctx.io, { quiet: args.quiet });
    const agent = await startAgent(args, ctx);
    await serveUntilSignal(agent, ctx, [`store ${agent.store.root}`], (s) => out.info(s));
  },
});
