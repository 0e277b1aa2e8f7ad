/**
 * The simulated cluster: N hosts on one Linux machine, each a network namespace plus a mount
 * namespace, joined by a bridge that lives in a namespace of its own (the machine's own network
 * is never touched). Every host's link is shaped with `tc tbf` in both directions: on the host's
 * eth0 (its upload) and on the bridge port facing it (its download).
 *
 * Inside host i, HOST_DIR (/srv/dftfs-host) is that host's private directory, so every tool can
 * use the same path on every host without two hosts writing the same file; from the harness, the
 * same directory is `host.dir`.
 *
 * Everything created is recorded in a state file before it is created; `Cluster.create` first
 * removes whatever a crashed run left behind (processes only when their pid still runs the
 * command line recorded), and `destroy` removes everything, also after a failure or Ctrl-C.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Names of namespaces and links all start with this; nothing else on the machine is touched. */
export const PREFIX = 'dftfsb';
/** Where namespace handles and the state file live (tmpfs). */
export const RUN_ROOT = '/run/dftfs-bench';
/**
 * Where hosts' private directories live: on disk by default (big files go there);
 * DFTFS_BENCH_WORK_ROOT moves them (e.g. to tmpfs, see fsNote).
 */
export const WORK_ROOT = process.env.DFTFS_BENCH_WORK_ROOT || '/var/tmp/dftfs-bench';
/**
 * Where a scenario's copies go once checked, and its clusters' host directories once destroyed,
 * when it defers deletions (`ClusterOptions.deferDeletes`): beside WORK_ROOT, so a rename moves
 * them, and deleted when the scenario ends (removeSetAside). A copy of many small files deleted
 * just before the next system creates its own would charge that system ext4's recently_deleted()
 * scan (see fsNote): the harness's own deletions, which a real cluster's copy does not follow.
 */
const SPENT_ROOT = `${WORK_ROOT}.spent`;
let spentCount = 0;

/** Moves `dir` (on WORK_ROOT's file system) out of the way, to be deleted by removeSetAside. */
export function setAside(dir: string): void {
  if (!fs.existsSync(dir)) return;
  fs.mkdirSync(SPENT_ROOT, { recursive: true });
  fs.renameSync(dir, path.join(SPENT_ROOT, `${process.pid}-${++spentCount}`));
}

/** Deletes what setAside moved (this run's, or a crashed run's). */
export function removeSetAside(): void {
  fs.rmSync(SPENT_ROOT, { recursive: true, force: true });
}

/**
 * The file system the host directories are on, and why it matters for many small files: on an
 * ext4 without a journal (this project's machines), a file created within minutes of many others
 * being deleted costs ~0.8 ms of CPU in ext4's inode allocator (recently_deleted(), seen with
 * perf), for every system alike: it alone is ~4 s of CPU per 5,000-file copy. An inode deleted
 * less than 60 s ago is skipped, 360 s while its inode table block is dirty (as new files in the
 * block make it). The tree scenarios set copies aside instead of deleting them between systems
 * (setAside), but an earlier run's deletions within those minutes still count.
 */
export function fsNote(): string {
  const type = spawnSync('stat', ['-f', '-c', '%T', path.dirname(WORK_ROOT)], { encoding: 'utf8' }).stdout.trim() || 'unknown';
  const journal = type.startsWith('ext2/ext3') ? ext4Journal(path.dirname(WORK_ROOT)) : undefined;
  const kind = journal === undefined ? type : `ext4 ${journal ? 'with' : 'without'} a journal`;
  const deleted = journal === false ? ' Files deleted there in the minutes before a run (an earlier run\'s) slow the creation of new ones, most for the systems measured first (recently_deleted() in ext4\'s inode allocator; see fsNote in bench/lib/cluster.ts).' : '';
  return `Host directories under ${WORK_ROOT} (${kind}; \`DFTFS_BENCH_WORK_ROOT\` moves them, bench/ext4-work-root.sh makes a journaled ext4 for them).${deleted}`;
}

/** Whether the ext4 holding `dir` has a journal (jbd2 lists the devices it journals); undefined if unknown. */
function ext4Journal(dir: string): boolean | undefined {
  const dev = spawnSync('findmnt', ['-n', '-o', 'SOURCE', '--target', dir], { encoding: 'utf8' }).stdout.trim();
  const name = spawnSync('lsblk', ['-n', '-o', 'KNAME', dev], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  if (!name || !fs.existsSync(`/proc/fs/ext4/${name}`)) return undefined;
  return fs.existsSync('/proc/fs/jbd2') && fs.readdirSync('/proc/fs/jbd2').some((j) => j.startsWith(`${name}-`));
}
/** Each host's private directory, as seen from inside the host. */
export const HOST_DIR = '/srv/dftfs-host';
const STATE_FILE = path.join(RUN_ROOT, 'state.json');
const SUBNET = '10.77.0';

/** "400mbit", "1gbit", "50mbit", "800kbit" → bits per second. */
export function parseLinkRate(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|m|g)?bit$/i.exec(s.trim());
  if (!m) throw new Error(`link rate ${JSON.stringify(s)}: say e.g. 400mbit or 1gbit`);
  const mult = { k: 1e3, m: 1e6, g: 1e9 }[(m[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 1;
  return Number(m[1]) * mult;
}

/**
 * The physical floor of a transfer: the time one receiver's link needs to carry the bytes that
 * receiver must get (bytes × 8 ÷ rate). No system can finish sooner on these links.
 */
export function floorSeconds(bytesPerReceiver: number, bitsPerSecond: number): number {
  return (bytesPerReceiver * 8) / bitsPerSecond;
}

export interface HostPlan {
  index: number;
  name: string;
  /** The network namespace (`ip netns` name). */
  netns: string;
  ip: string;
  /** veth end inside the host (renamed eth0 there) and the one on the bridge. */
  vethHost: string;
  vethSwitch: string;
}

export interface TopologyPlan {
  switchNs: string;
  bridge: string;
  hosts: HostPlan[];
}

/** Names and addresses of an n-host cluster (pure: no system call). Host 0 is the driver/origin. */
export function planTopology(n: number): TopologyPlan {
  if (!Number.isInteger(n) || n < 1 || n > 200) throw new Error(`a cluster has 1 to 200 hosts, not ${n}`);
  return {
    switchNs: `${PREFIX}-sw`,
    bridge: 'br0',
    hosts: Array.from({ length: n }, (_, i) => ({
      index: i,
      name: `h${i}`,
      netns: `${PREFIX}-h${i}`,
      ip: `${SUBNET}.${i + 1}`,
      vethHost: `${PREFIX}${i}a`,
      vethSwitch: `${PREFIX}${i}b`,
    })),
  };
}

/**
 * tbf's bucket must hold at least one timer tick of traffic at the rate (else it cannot reach the
 * rate), and never less than 64 KiB (a few full-size TSO segments).
 */
export function tbfBurstBytes(bitsPerSecond: number): number {
  return Math.max(64 * 1024, Math.ceil(bitsPerSecond / 8 / 250));
}

/** Every `ip` / `tc` command that builds the topology, in order (pure: tests read it). */
export function setupCommands(t: TopologyPlan, bitsPerSecond: number): string[][] {
  const tbf = (dev: string) => ['tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${Math.round(bitsPerSecond)}bit`,
    'burst', String(tbfBurstBytes(bitsPerSecond)), 'latency', '100ms'];
  const inNs = (ns: string, argv: string[]) => ['ip', 'netns', 'exec', ns, ...argv];
  const cmds: string[][] = [
    ['ip', 'netns', 'add', t.switchNs],
    inNs(t.switchNs, ['ip', 'link', 'add', t.bridge, 'type', 'bridge']),
    inNs(t.switchNs, ['ip', 'link', 'set', t.bridge, 'up']),
  ];
  for (const h of t.hosts) {
    cmds.push(
      ['ip', 'netns', 'add', h.netns],
      ['ip', 'link', 'add', h.vethHost, 'type', 'veth', 'peer', 'name', h.vethSwitch],
      ['ip', 'link', 'set', h.vethHost, 'netns', h.netns],
      ['ip', 'link', 'set', h.vethSwitch, 'netns', t.switchNs],
      ['ip', '-n', h.netns, 'link', 'set', h.vethHost, 'name', 'eth0'],
      ['ip', '-n', h.netns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0'],
      ['ip', '-n', h.netns, 'link', 'set', 'eth0', 'up'],
      ['ip', '-n', h.netns, 'link', 'set', 'lo', 'up'],
      ['ip', '-n', t.switchNs, 'link', 'set', h.vethSwitch, 'master', t.bridge],
      ['ip', '-n', t.switchNs, 'link', 'set', h.vethSwitch, 'up'],
      inNs(h.netns, tbf('eth0')),
      inNs(t.switchNs, tbf(h.vethSwitch)),
    );
  }
  return cmds;
}

interface State {
  harnessPid: number;
  harnessCmdline: string;
  netns: string[];
  nsFiles: string[];
  procs: Array<{ pid: number; cmdline: string }>;
}

function run(argv: string[], allowFail = false): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0 && !allowFail) throw new Error(`${argv.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout ?? '';
}

const cmdlineOf = (pid: number): string | undefined => {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return undefined; }
};

function readState(): State | undefined {
  try { return JSON.parse(fs.readFileSync(STATE_FILE, 'utf8')) as State; } catch { return undefined; }
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Ends the processes a state file lists (only those whose pid still runs the recorded command). */
function killRecorded(procs: State['procs']): void {
  const live = procs.filter((p) => cmdlineOf(p.pid) === p.cmdline);
  for (const p of live) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
}

/** Lazily unmounts every FUSE mount inside a mount namespace (its daemons are already gone). */
function unmountFuseIn(nsFile: string): void {
  const mounts = run(['nsenter', `--mount=${nsFile}`, 'cat', '/proc/self/mounts'], true);
  for (const line of mounts.split('\n')) {
    const [, where, type] = line.split(' ');
    if (where && type?.startsWith('fuse')) run(['nsenter', `--mount=${nsFile}`, 'umount', '-l', where], true);
  }
}

/** Removes everything a run (this one or a crashed one) recorded, and any namespace with our prefix. */
export function cleanLeftovers(): { removed: number } {
  let removed = 0;
  const st = readState();
  if (st && st.harnessPid !== process.pid && cmdlineOf(st.harnessPid) === st.harnessCmdline) {
    throw new Error(`another benchmark run (pid ${st.harnessPid}) owns the simulated cluster; wait for it or end it`);
  }
  const ours = run(['ip', 'netns', 'list'], true).split('\n').map((l) => l.split(' ')[0] ?? '').filter((ns) => ns.startsWith(`${PREFIX}-`));
  // Every process inside one of our namespaces was started by a run of this harness (sshd's
  // sessions, make's jobs …): end them by pid before unmounting what they may hold.
  const pids = new Set(ours.flatMap((ns) => run(['ip', 'netns', 'pids', ns], true).split('\n').filter(Boolean).map(Number)));
  pids.delete(process.pid);
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  if (st) killRecorded(st.procs);
  if (pids.size || st?.procs.length) sleepSync(300);
  if (st) {
    for (const f of st.nsFiles) {
      if (!fs.existsSync(f)) continue;
      unmountFuseIn(f);
      run(['umount', f], true);
      removed++;
    }
  }
  for (const ns of ours) { run(['ip', 'netns', 'del', ns], true); removed++; }
  const nsDir = path.join(RUN_ROOT, 'ns');
  if (fs.existsSync(nsDir)) run(['umount', nsDir], true);
  fs.rmSync(STATE_FILE, { force: true });
  return { removed };
}

export interface ExecResult { code: number | null; stdout: string; stderr: string; seconds: number }

export interface SpawnOptions { env?: NodeJS.ProcessEnv; cwd?: string }

/** One simulated host: run commands inside its network and mount namespaces. */
export class SimHost {
  readonly procs = new Set<ChildProcess>();

  constructor(readonly plan: HostPlan, readonly dir: string, readonly nsFile: string, private readonly cluster: Cluster) {}

  get index(): number { return this.plan.index; }
  get ip(): string { return this.plan.ip; }
  get name(): string { return this.plan.name; }
  /** Its cluster sets what it is done with aside instead of deleting it (ClusterOptions.deferDeletes). */
  get defersDeletes(): boolean { return this.cluster.deferDeletes; }

  /** argv wrapped so that it runs inside this host (nsenter execs it: the pid is the command's). */
  wrap(argv: string[]): string[] {
    return ['nsenter', `--net=/run/netns/${this.plan.netns}`, `--mount=${this.nsFile}`, '--', ...argv];
  }

  /** Starts a long-running command inside the host; it is ended when the cluster is destroyed. */
  spawn(argv: string[], opts: SpawnOptions = {}): ChildProcess {
    const full = this.wrap(argv);
    const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env }, cwd: opts.cwd ?? '/' });
    this.procs.add(child);
    child.once('exit', () => this.procs.delete(child));
    if (child.pid) this.cluster.record(child.pid);
    return child;
  }

  /** Starts a command and resolves once its output matches `ready` (rejects if it exits first or times out). */
  async start(argv: string[], ready: RegExp, opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<ChildProcess> {
    const child = this.spawn(argv, opts);
    return new Promise((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`${this.name}: ${argv.join(' ')} not ready after ${opts.timeoutMs ?? 30_000} ms: ${text.slice(-2000)}`)), opts.timeoutMs ?? 30_000);
      const on = (b: Buffer) => { text += b; if (ready.test(text)) { clearTimeout(timer); resolve(child); } };
      child.stdout!.on('data', on);
      child.stderr!.on('data', on);
      child.once('exit', (c, sig) => { clearTimeout(timer); reject(new Error(`${this.name}: ${argv.join(' ')} exited ${c ?? sig}: ${text.slice(-2000)}`)); });
    });
  }

  /** Runs a command inside the host to completion; rejects on a non-zero exit unless `allowFail`. */
  exec(argv: string[], opts: SpawnOptions & { allowFail?: boolean; timeoutMs?: number } = {}): Promise<ExecResult> {
    const child = this.spawn(argv, opts);
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      let stdout = '', stderr = '';
      child.stdout!.on('data', (b: Buffer) => { stdout += b; });
      child.stderr!.on('data', (b: Buffer) => { stderr += b; });
      const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
      child.once('error', reject);
      child.once('close', (code, sig) => {
        if (timer) clearTimeout(timer);
        const r = { code, stdout, stderr, seconds: (performance.now() - t0) / 1000 };
        if (code !== 0 && !opts.allowFail) reject(new Error(`${this.name}: ${argv.join(' ')} exited ${code ?? sig}: ${stderr.trim().slice(-2000)}`));
        else resolve(r);
      });
    });
  }

  /** The path, as the harness sees it, of HOST_DIR/rel inside this host. */
  path(rel = ''): string { return path.join(this.dir, rel); }
}

export interface ClusterOptions {
  hosts: number;
  /** Link rate of every host, both directions, e.g. "400mbit". */
  rate: string;
  /** Host directories set aside on destroy, not deleted (see SPENT_ROOT). */
  deferDeletes?: boolean;
}

let active: Cluster | undefined;

/** The cluster being used, if any (the Ctrl-C handler destroys it). */
export const activeCluster = () => active;

export class Cluster {
  readonly hosts: SimHost[] = [];
  readonly bitsPerSecond: number;
  private readonly state: State = { harnessPid: process.pid, harnessCmdline: cmdlineOf(process.pid) ?? '', netns: [], nsFiles: [], procs: [] };
  private destroyed = false;

  private constructor(readonly plan: TopologyPlan, readonly rate: string, readonly deferDeletes: boolean) {
    this.bitsPerSecond = parseLinkRate(rate);
  }

  /** Builds the cluster (after removing a crashed run's leftovers). Tears down what it built if it fails. */
  static async create(opts: ClusterOptions): Promise<Cluster> {
    if (process.getuid?.() !== 0) throw new Error('the simulated cluster needs root (network and mount namespaces)');
    if (active) throw new Error('a cluster is already up in this process');
    cleanLeftovers();
    const c = new Cluster(planTopology(opts.hosts), opts.rate, opts.deferDeletes ?? false);
    active = c;
    try {
      c.build();
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  record(pid: number): void {
    this.state.procs.push({ pid, cmdline: cmdlineOf(pid) ?? '' });
    this.save();
  }

  private save(): void {
    fs.mkdirSync(RUN_ROOT, { recursive: true });
    fs.writeFileSync(STATE_FILE, JSON.stringify(this.state));
  }

  private build(): void {
    const t = this.plan;
    this.state.netns = [t.switchNs, ...t.hosts.map((h) => h.netns)];
    this.save();
    for (const argv of setupCommands(t, this.bitsPerSecond)) run(argv);
    // Mount namespaces are pinned to files under a private bind mount (see unshare(1)).
    const nsDir = path.join(RUN_ROOT, 'ns');
    fs.mkdirSync(nsDir, { recursive: true });
    run(['mount', '--bind', nsDir, nsDir]);
    run(['mount', '--make-private', nsDir]);
    fs.mkdirSync(HOST_DIR, { recursive: true });
    for (const h of t.hosts) {
      const dir = path.join(WORK_ROOT, h.name);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      const nsFile = path.join(nsDir, h.name);
      fs.writeFileSync(nsFile, '');
      this.state.nsFiles.push(nsFile);
      this.save();
      run(['unshare', `--mount=${nsFile}`, '--propagation', 'private', 'true']);
      run(['nsenter', `--mount=${nsFile}`, 'mount', '--bind', dir, HOST_DIR]);
      this.hosts.push(new SimHost(h, dir, nsFile, this));
    }
  }

  /** Ends every process started in the cluster, unmounts, deletes namespaces and host directories. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const live = this.hosts.flatMap((h) => [...h.procs]);
    await Promise.all(live.map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      const kill = setTimeout(() => c.kill('SIGKILL'), 3000);
      c.once('exit', () => { clearTimeout(kill); resolve(); });
      c.kill('SIGTERM');
    })));
    killRecorded(this.state.procs);
    cleanLeftovers();
    if (this.deferDeletes) setAside(WORK_ROOT);
    else fs.rmSync(WORK_ROOT, { recursive: true, force: true });
    if (active === this) active = undefined;
  }
}
