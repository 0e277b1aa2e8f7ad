import os from 'node:os';
import { defineCommand } from 'citty';
import { usageError } from '../errors.js';
import { Worker } from '../make/index.js';
import { ATTR_TIMEOUT_S, DEFAULT_FETCH_TIMEOUT_MS, TreeMount } from '../fs/index.js';
import type { CliContext } from './context.js';
import { agentOptions, netArgs, untilSignal } from './net-args.js';
import { createReporter } from './output.js';

export const mountArgs = {
  'read-only': { type: 'boolean', description: 'Refuse every write (EROFS)' },
  'cache-dir': { type: 'string', description: 'Where the writable upper layer lives (default: <home>/mounts/<id of the mount point>; kept across remounts)', valueHint: 'DIR' },
  'allow-other': { type: 'boolean', description: 'Let other users use the mount (non-root needs user_allow_other in /etc/fuse.conf)' },
  debug: { type: 'boolean', description: 'Print libfuse\'s trace of every request on stderr' },
  slots: { type: 'string', description: 'Jobs of `dftfs drive make` this mount runs at once (default: one per core; 0: none)', valueHint: 'N' },
  'fetch-timeout': { type: 'string', description: `Seconds a read waits for its chunks before failing with EIO (default ${DEFAULT_FETCH_TIMEOUT_MS / 1000})`, valueHint: 'SECONDS' },
} as const;

export function parseSeconds(flag: string, s: string | undefined, fallbackMs: number): number {
  if (s === undefined) return fallbackMs;
  const n = Number(s);
  if (!(n > 0 && n <= 86400)) throw usageError(`--${flag} takes seconds from 0 to 86400, not ${JSON.stringify(s)}`);
  return n * 1000;
}

export const createMountCommand = (ctx: CliContext) => defineCommand({
  meta: {
    name: 'mount',
    description: `Mount a lazy, writable FUSE view of the driver's published tree at MOUNTPOINT until Ctrl-C or SIGTERM (then unmount). Metadata comes from the TOC (no round trip per stat; kernel caches attributes ${ATTR_TIMEOUT_S} s); a file's chunks are fetched from the nearest holder when it is opened; writes go to a local upper layer. Each new TOC generation the driver announces is applied as it comes. The mount also runs jobs of dftfs drive make (--slots).`,
  },
  args: {
    mountpoint: { type: 'positional', description: 'Empty directory to mount on', required: true },
    ...netArgs,
    ...mountArgs,
  },
  async run({ args }) {
    const out = createReporter(ctx.io, { quiet: args.quiet });
    const fetchTimeoutMs = parseSeconds('fetch-timeout', args['fetch-timeout'], DEFAULT_FETCH_TIMEOUT_MS);
    const slots = args.slots === undefined ? os.availableParallelism() : Number(args.slots);
    if (!Number.isInteger(slots) || slots < 0 || slots > 1024) throw usageError(`--slots takes a whole number from 0 to 1024, not ${JSON.stringify(args.slots)}`);
    const m = await TreeMount.start({
      agent: agentOptions(args, ctx),
      mountpoint: args.mountpoint,
      cacheDir: args['cache-dir'],
      readOnly: args['read-only'],
      allowOther: args['allow-other'],
      debug: args.debug,
      fetchTimeoutMs,
      onApply: (v) => out.info(`generation ${v.generation} applied (root ${v.root})`),
    });
    // Ctrl-C from here on unmounts, even while the worker is still starting.
    const stopped = untilSignal();
    const worker = slots > 0 ? new Worker(m, slots) : undefined;
    try {
      if (worker) await Promise.race([worker.start(), stopped]);
      for (const l of [`mounted ${m.mountpoint} (generation ${m.generation})`, `nats ${m.agent.natsUrl}`, `agent ${m.agent.id} at ${m.agent.addr.ip}:${m.agent.addr.port}`]) ctx.io.stdout.write(l + '\n');
      const sig = await stopped;
      out.info(`${sig}: unmounting ${m.mountpoint}`);
    } finally {
      await worker?.close();
      await m.close();
    }
  },
});
