import { defineCommand } from 'citty';
import { readStatuses } from '../agent/index.js';
import { HostLocks } from '../agent/host-lock.js';
import { storeDir } from '../config.js';
import { homeArgs, resolveHome, type CliContext } from './context.js';
import { formatBytes } from './output.js';

export const createStatusCommand = (ctx: CliContext) => defineCommand({
  meta: { name: 'status', description: "Show this host's agents, transfers in progress (object, bytes, rate) and recent failures." },
  args: { ...homeArgs, json: { type: 'boolean', description: 'Print as JSON' } },
  async run({ args }) {
    const home = resolveHome(args.home, ctx);
    const agents = readStatuses(home);
    const locks = await new HostLocks(storeDir(home)).list();
    if (args.json) {
      ctx.io.stdout.write(JSON.stringify({ agents, locks }) + '\n');
      return;
    }
    const w = (s: string) => ctx.io.stdout.write(s + '\n');
    if (agents.length === 0) w(`no agent running with home ${home}`);
    for (const a of agents) {
      w(`agent ${a.agent} (pid ${a.pid})`);
      for (const t of a.transfers) w(`  fetching ${t.object.slice(0, 23)}…  ${formatBytes(t.bytes)} / ${formatBytes(t.size)}  ${formatBytes(t.rateBytesPerSec)}/s`);
      for (const [peer, n] of Object.entries(a.servedBytes)) w(`  served ${formatBytes(n)} to ${peer}`);
      for (const f of a.failures.slice(-5)) w(`  ${new Date(f.timeMs).toISOString()} ${f.message}`);
    }
    for (const l of locks) w(`download lock: ${l.object.slice(0, 23)}… by ${l.agent} (pid ${l.pid}), ${formatBytes(l.size)}`);
  },
});
