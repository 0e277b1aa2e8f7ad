import path from 'node:path';
import { defineCommand } from 'citty';
import { usageError } from '../errors.js';
import { Driver, type DriveSummary } from '../make/index.js';
import { resolveHome, statePathFor, type CliContext } from './context.js';
import { appendIndexJournal } from '../indexer/index.js';
import { indexArgs, runIndex } from './index-cmd.js';
import { agentOptions, netArgs } from './net-args.js';
import { createReporter, formatBytes } from './output.js';

export function formatSummary(s: DriveSummary): string[] {
  const lines = [`dftfs drive: make exited ${s.status}; ${s.jobs} jobs on workers, ${s.local} run on the driver, ${s.rerun} re-run after a worker was lost; ${formatBytes(s.outputBytes)} of outputs brought home; generation ${s.generation}; ${(s.wallMs / 1000).toFixed(2)} s`];
  for (const [w, n] of Object.entries(s.jobsPerWorker).sort()) lines.push(`  ${w}: ${n} jobs`);
  for (const u of s.undeclared) lines.push(`undeclared dependency: recipe for ${u.target} read ${u.file} (made by the rule for ${u.producedBy}) without listing it as a prerequisite`);
  return lines;
}

export const createDriveCommand = (ctx: CliContext) => defineCommand({
  meta: {
    name: 'drive',
    description: 'Run GNU make in this tree with every recipe line sent to a worker (`dftfs mount` with slots): `dftfs drive make -j 16 [make args…]`. A rule counts as done only once its outputs are back in this tree. The Makefile needs no edit.',
  },
  args: {
    make: { type: 'positional', description: 'The word make (then make\'s own arguments)', required: true },
    // citty reads --no-X as X=false, so the flag users type is --no-local.
    local: { type: 'boolean', default: true, description: 'Run jobs on the driver when no worker is connected; --no-local fails them instead' },
    ...netArgs,
    threads: indexArgs.threads,
  },
  async run({ args, rawArgs }) {
    const out = createReporter(ctx.io, { quiet: args.quiet });
    const at = rawArgs.indexOf(args.make);
    if (args.make !== 'make' && !args.make.endsWith('/make')) throw usageError(`dftfs drive runs GNU make: dftfs drive make -j N [args…], not ${JSON.stringify(args.make)}`);
    const makeArgs = rawArgs.slice(at + 1);
    // The tree is the current directory, as for make; make's own -C works inside it.
    const dir = path.resolve('.');
    const driver = new Driver({
      agent: agentOptions(args, ctx), dir, makeArgs, make: args.make, noLocal: args.local === false,
      index: async (generation) => runIndex(dir, { ...args, 'no-state': false }, ctx, createReporter(ctx.io, { quiet: true }), generation),
      recordState: (records) => appendIndexJournal(statePathFor(resolveHome(args.home, ctx), dir), records),
      warn: (m) => out.warn(m),
    });
    const summary = await driver.run();
    for (const l of formatSummary(summary)) out.info(l);
    if (ctx.env.DFTFS_SUMMARY_JSON) ctx.io.stdout.write(JSON.stringify(summary) + '\n');
    ctx.exitCode = summary.status;
  },
});
