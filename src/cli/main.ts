import { defineCommand, renderUsage, runCommand, type CommandDef } from 'citty';
import type { CliContext } from './context.js';
import { describeError, EXIT_OK, processIo, type CliIo } from './output.js';
import { ownPackage } from './package-root.js';

const pkg = ownPackage();

const EPILOG = `
Exit codes: 0 success, 1 failure, 2 usage error.
Environment: DFTFS_HOME (host state directory), DFTFS_NATS, DFTFS_CLUSTER, DFTFS_SECRET, DFTFS_HOST_ID,
DFTFS_DEBUG=index,store,net,fetch,agent,bus,fuse,make or * (debug log on stderr).
Run 'dftfs <command> --help' for a command's options.`;

/** The root command; subcommands get the context through their factories. */
export function createCli(ctx: CliContext): CommandDef {
  return defineCommand({
    meta: {
      name: 'dftfs',
      version: pkg.version,
      description: 'Distributed file transfer filesystem: chunked, BLAKE3-verified trees moved peer to peer for make -j across a cluster.',
    },
    // Loaded on use: a command's start-up pays only for its own modules (FUSE, tar, …), ~0.1 s less.
    subCommands: {
      index: () => import('./index-cmd.js').then((m) => m.createIndexCommand(ctx)),
      export: () => import('./export-cmd.js').then((m) => m.createExportCommand(ctx)),
      import: () => import('./import-cmd.js').then((m) => m.createImportCommand(ctx)),
      serve: () => import('./serve-cmd.js').then((m) => m.createServeCommand(ctx)),
      mount: () => import('./mount-cmd.js').then((m) => m.createMountCommand(ctx)),
      drive: () => import('./drive-cmd.js').then((m) => m.createDriveCommand(ctx)),
      demo: () => import('./demo-cmd.js').then((m) => m.createDemoCommand(ctx)),
      agent: () => import('./agent-cmd.js').then((m) => m.createAgentCommand(ctx)),
      get: () => import('./get-cmd.js').then((m) => m.createGetCommand(ctx)),
      bcast: () => import('./bcast-cmd.js').then((m) => m.createBcastCommand(ctx)),
      status: () => import('./status-cmd.js').then((m) => m.createStatusCommand(ctx)),
    },
  }) as CommandDef;
}

async function resolveForHelp(root: CommandDef, argv: string[]): Promise<[CommandDef, CommandDef | undefined]> {
  let cmd = root;
  let parent: CommandDef | undefined;
  for (const a of argv) {
    if (a.startsWith('-')) continue;
    const subs = (typeof cmd.subCommands === 'function' ? await cmd.subCommands() : await cmd.subCommands) ?? {};
    const sub = (subs as Record<string, unknown>)[a];
    if (!sub) break;
    parent = cmd;
    cmd = (typeof sub === 'function' ? await (sub as () => unknown)() : await sub) as CommandDef;
  }
  return [cmd, parent];
}

// citty colours its text whether or not it goes to a terminal.
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

/** Runs the CLI and returns its exit code; never calls process.exit, so tests can call it. */
export async function runCli(argv: string[], io: CliIo = processIo(), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const ctx: CliContext = { io, env };
  const root = createCli(ctx);
  try {
    if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
      io.stdout.write(`${pkg.version}\n`);
      return EXIT_OK;
    }
    if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
      const [cmd, parent] = await resolveForHelp(root, argv);
      const usage = (await renderUsage(cmd, parent)) + '\n' + (parent ? '' : EPILOG + '\n');
      io.stdout.write(io.stdout.isTTY ? usage : stripAnsi(usage));
      return EXIT_OK;
    }
    await runCommand(root, { rawArgs: argv });
    return ctx.exitCode ?? EXIT_OK;
  } catch (err) {
    const { lines, exitCode } = describeError(err);
    io.stderr.write(stripAnsi(lines.join('\n')) + '\n');
    return exitCode;
  }
}
