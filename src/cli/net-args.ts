import fs from 'node:fs';
import path from 'node:path';
import { Agent, type AgentOptions } from '../agent/index.js';
import { usageError } from '../errors.js';
import { parseRate } from '../net/index.js';
import { homeArgs, resolveHome, type CliContext } from './context.js';

/** Options of every command that joins a cluster. Flags win over DFTFS_* variables, which win over the config file. */
export const netArgs = {
  ...homeArgs,
  nats: { type: 'string', description: 'NATS URL of the cluster (env DFTFS_NATS); without one, dftfs starts its own nats-server on loopback', valueHint: 'URL' },
  cluster: { type: 'string', description: 'Cluster name: subjects dftfs.<cluster>.… (env DFTFS_CLUSTER; default "default")', valueHint: 'NAME' },
  'host-id': { type: 'string', description: 'This host\'s name in the cluster; agents with the same host id share one store (env DFTFS_HOST_ID; default: hostname)', valueHint: 'ID' },
  advertise: { type: 'string', description: 'Address peers use to reach this agent (default: first non-loopback IPv4)', valueHint: 'IP' },
  port: { type: 'string', description: 'Data-plane TCP port (default: any free port)', valueHint: 'PORT' },
  secret: { type: 'string', description: 'Cluster secret: peers must prove they know it (env DFTFS_SECRET)', valueHint: 'SECRET' },
  tls: { type: 'boolean', description: 'Encrypt the data plane: TLS 1.3 keyed by the cluster secret, no certificates (needs --secret; every agent of the cluster must use it; env DFTFS_TLS=1)' },
  bwlimit: { type: 'string', description: 'Upload limit in bytes/s, suffix k, m or g (like rsync): e.g. 50m', valueHint: 'RATE' },
  compress: { type: 'boolean', description: 'Deflate chunks on the wire (off by default; helps only on slow links with compressible data)' },
  jobs: { type: 'string', description: 'Sources fetched from in parallel per file (default 4)', valueHint: 'N' },
} as const;

export interface NetArgValues {
  home?: string; nats?: string; cluster?: string; 'host-id'?: string; advertise?: string; port?: string;
  secret?: string; tls?: boolean; bwlimit?: string; compress?: boolean; jobs?: string;
}

/** `<home>/config.json` or $DFTFS_CONFIG: {"nats": …, "cluster": …, "secret": …}. */
function readConfig(home: string, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const file = env.DFTFS_CONFIG ?? path.join(home, 'config.json');
  if (!fs.existsSync(file)) return {};
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    return c && typeof c === 'object' ? (c as Record<string, unknown>) : {};
  } catch (err) {
    throw usageError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

const positiveInt = (name: string, s: string | undefined, max: number): number | undefined => {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > max) throw usageError(`--${name} takes a whole number from 1 to ${max}, not ${JSON.stringify(s)}`);
  return n;
};

export function agentOptions(args: NetArgValues, ctx: CliContext, extra: Partial<AgentOptions> = {}): AgentOptions {
  const home = resolveHome(args.home, ctx);
  const cfg = readConfig(home, ctx.env);
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  let bw: number | undefined;
  if (args.bwlimit !== undefined) {
    bw = parseRate(args.bwlimit);
    if (bw === undefined) throw usageError(`--bwlimit takes a rate like 500k, 50m or 1g (bytes per second), not ${JSON.stringify(args.bwlimit)}`);
  }
  return {
    home,
    cluster: args.cluster ?? str(ctx.env.DFTFS_CLUSTER) ?? str(cfg.cluster) ?? 'default',
    nats: args.nats ?? str(ctx.env.DFTFS_NATS) ?? str(cfg.nats),
    hostId: args['host-id'] ?? str(ctx.env.DFTFS_HOST_ID),
    advertise: args.advertise,
    port: positiveInt('port', args.port, 65535),
    secret: args.secret ?? str(ctx.env.DFTFS_SECRET) ?? str(cfg.secret),
    tls: args.tls ?? (ctx.env.DFTFS_TLS === '1' || cfg.tls === true),
    bwlimitBytesPerSec: bw,
    compress: args.compress,
    jobs: positiveInt('jobs', args.jobs, 256),
    ...extra,
  };
}

export const startAgent = (args: NetArgValues, ctx: CliContext, extra: Partial<AgentOptions> = {}) => Agent.start(agentOptions(args, ctx, extra));

/**
 * Runs an agent until Ctrl-C or SIGTERM: prints `lines` and the `agent ID at IP:PORT` line that
 * scripts and tests wait for, then shuts down cleanly (stop serving, drain NATS).
 */
export async function serveUntilSignal(agent: Agent, ctx: CliContext, lines: string[], info: (s: string) => void): Promise<void> {
  try {
    for (const l of [...lines, `nats ${agent.natsUrl}`, `agent ${agent.id} at ${agent.addr.ip}:${agent.addr.port}`]) ctx.io.stdout.write(l + '\n');
    const sig = await untilSignal();
    info(`${sig}: stopping`);
  } finally {
    await agent.close();
  }
}

/** Resolves on the first SIGINT or SIGTERM (a long-running command's way to end cleanly). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
