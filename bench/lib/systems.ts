/**
 * The systems the cluster scenarios compare, started inside the simulated cluster: nats-server and
 * dftfs, nfs-ganesha (NFSv4, read with libnfs: this kernel has no NFS client), sshd for TakTuk and
 * scp. Debian packages that are missing are installed with apt first.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HOST_DIR, WORK_ROOT, type Cluster, type SimHost } from './cluster.js';
import { BIN } from './procs.js';

/** Debian packages per command the harness runs. */
const PACKAGES: Record<string, string> = {
  'nats-server': 'nats-server',
  'ganesha.nfsd': 'nfs-ganesha nfs-ganesha-vfs',
  'nfs-cp': 'libnfs-utils',
  taktuk: 'taktuk',
  sshd: 'openssh-server',
  ssh: 'openssh-client',
  gcc: 'gcc libc6-dev',
  b3sum: 'b3sum',
  nsenter: 'util-linux',
  tc: 'iproute2',
};

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd} || test -x /usr/sbin/${cmd}`], { stdio: 'ignore' }).status === 0;

/** Installs (apt) whatever the baselines need and this machine lacks. */
export function ensurePackages(log: (s: string) => void): void {
  const need = new Set<string>();
  for (const [cmd, pkgs] of Object.entries(PACKAGES)) if (!have(cmd)) pkgs.split(' ').forEach((p) => need.add(p));
  if (!fs.existsSync('/usr/include/nfsc/libnfs.h')) need.add('libnfs-dev');
  if (!fs.existsSync('/usr/include/fuse/fuse.h')) need.add('libfuse-dev');
  if (need.size === 0) return;
  log(`installing Debian packages: ${[...need].join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const argv of [['apt-get', 'update', '-qq'], ['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...need]]) {
    const r = spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  }
}

/** Compiles bench/native/NAME.c into WORK_ROOT-tools (which outlives each cluster's WORK_ROOT). */
function buildNative(name: string, flags: string[]): string {
  const src = path.resolve(path.dirname(new URL(import.meta.url).pathname), `../../../bench/native/${name}.c`);
  const out = path.join(`${WORK_ROOT}-tools`, name);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const r = spawnSync('gcc', ['-O2', '-Wall', '-o', out, src, ...flags], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building ${name}: ${r.stderr}`);
  return out;
}

/** The NFS tree client (bench/native/nfs-tree.c, over libnfs). */
export const buildNfsTree = () => buildNative('nfs-tree', ['-lnfs']);

/** The libfuse 2 floor for the metadata walk (bench/native/fuse-passthrough.c). */
export const buildFusePassthrough = () => buildNative('fuse-passthrough', ['-D_FILE_OFFSET_BITS=64', '-I/usr/include/fuse', '-pthread', '-lfuse']);

export const NATS_PORT = 4222;
export const NATS_MONITOR_PORT = 8222;
export const natsUrl = (c: Cluster) => `nats://${c.hosts[0]!.ip}:${NATS_PORT}`;

/** nats-server on host 0, listening on the cluster network (with its HTTP monitoring port). */
export function startNats(c: Cluster) {
  return c.hosts[0]!.start(['nats-server', '-a', c.hosts[0]!.ip, '-p', String(NATS_PORT), '-m', String(NATS_MONITOR_PORT)], /Server is ready/);
}

/** nats-server's message counters (its /varz), read from host 0. */
export async function natsVarz(c: Cluster): Promise<{ in_msgs: number; out_msgs: number }> {
  const url = `http://${c.hosts[0]!.ip}:${NATS_MONITOR_PORT}/varz`;
  const r = await c.hosts[0]!.exec([process.execPath, '-e', `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(t))`]);
  const v = JSON.parse(r.stdout) as { in_msgs?: unknown; out_msgs?: unknown };
  if (typeof v.in_msgs !== 'number' || typeof v.out_msgs !== 'number') throw new Error(`nats-server /varz has no message counters: ${r.stdout.slice(0, 200)}`);
  return { in_msgs: v.in_msgs, out_msgs: v.out_msgs };
}

/** Environment of a dftfs process on a host: its own store, its host id, the cluster's NATS. */
export function dftfsEnv(c: Cluster, h: SimHost): NodeJS.ProcessEnv {
  return { DFTFS_HOME: path.join(HOST_DIR, 'dftfs'), DFTFS_HOST_ID: h.name, DFTFS_NATS: natsUrl(c), DFTFS_CLUSTER: 'bench' };
}

export const dftfs = (...args: string[]) => [process.execPath, BIN, ...args];

/** `dftfs agent` on every given host; resolves when all announce themselves. */
export async function startAgents(c: Cluster, hosts: SimHost[]) {
  return Promise.all(hosts.map((h) => h.start(dftfs('agent'), /^agent /m, { env: dftfsEnv(c, h) })));
}

/** `dftfs mount --slots S` at HOST_DIR/mnt on every worker (nats-server must be up); resolves once all are mounted. */
export async function startWorkerMounts(c: Cluster, workers: SimHost[], slots: number): Promise<void> {
  const mnt = path.join(HOST_DIR, 'mnt');
  await Promise.all(workers.map(async (w) => {
    await w.exec(['mkdir', '-p', mnt]);
    await w.start(dftfs('mount', mnt, '--slots', String(slots)), /^mounted /m, { env: dftfsEnv(c, w), timeoutMs: 60_000 });
  }));
}

export interface DriveSummary { status: number; local: number; jobs: number; jobsPerWorker: Record<string, number> }

/** `dftfs drive make ARGS` in `dir` on host 0; rejects unless make succeeded with every job run on a worker. */
export async function driveMake(c: Cluster, dir: string, makeArgs: string[]): Promise<DriveSummary> {
  const driver = c.hosts[0]!;
  const r = await driver.exec(['sh', '-c', `cd ${dir} && exec ${dftfs('drive', 'make', ...makeArgs).join(' ')}`], { env: { ...dftfsEnv(c, driver), DFTFS_SUMMARY_JSON: '1' } });
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as DriveSummary;
  if (summary.status !== 0 || summary.local > 0) throw new Error(`dftfs drive: build failed or ran on the driver: ${JSON.stringify(summary)}`);
  return summary;
}

/** The path (inside each host) of the file holding an object in that host's dftfs store. */
export const storeObjectPath = (digest: string) => {
  const hex = digest.replace(/^blake3:/, '');
  return path.join(HOST_DIR, 'dftfs', 'store', 'objects', hex.slice(0, 2), hex.slice(2));
};

/**
 * nfs-ganesha on host 0 exporting `exportDir` (a path inside host 0) read-only as /export over
 * NFSv4 on TCP, with no grace period; resolves when a client on host 0 can list it.
 */
export async function startGanesha(c: Cluster, exportDir: string): Promise<string> {
  const h = c.hosts[0]!;
  const dir = h.path('ganesha');
  fs.mkdirSync(dir, { recursive: true });
  const inHost = path.join(HOST_DIR, 'ganesha');
  fs.writeFileSync(path.join(dir, 'ganesha.conf'), `
NFS_CORE_PARAM { Protocols = 4; NFS_Port = 2049; Enable_NLM = false; Enable_RQUOTA = false; Bind_addr = ${h.ip}; }
NFSv4 { Graceless = true; RecoveryBackend = fs; }
NFS_KRB5 { Active_krb5 = false; }
EXPORT {
  Export_Id = 1; Path = ${exportDir}; Pseudo = /export; Access_Type = RO; Squash = No_Root_Squash;
  SecType = sys; Protocols = 4; Transports = TCP; FSAL { Name = VFS; }
}
LOG { Default_Log_Level = WARN; }
`);
  h.spawn(['ganesha.nfsd', '-F', '-f', `${inHost}/ganesha.conf`, '-L', `${inHost}/log`, '-p', `${inHost}/pid`, '-N', 'NIV_WARN']);
  const url = `nfs://${h.ip}/export?version=4`;
  for (let i = 0; i < 100; i++) {
    const r = await h.exec(['nfs-ls', url], { allowFail: true });
    if (r.code === 0) return url;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`nfs-ganesha did not start: ${fs.readFileSync(path.join(dir, 'log'), 'utf8').slice(-2000)}`);
}

/** The URL of a file or directory `rel` under the export. */
export const nfsUrl = (c: Cluster, rel: string) => `nfs://${c.hosts[0]!.ip}/export/${rel}?version=4`;

/**
 * sshd on every host (root login with a key made for this run only), for TakTuk and scp.
 * Returns the ssh command line to use from any host.
 */
export async function startSshd(c: Cluster): Promise<string> {
  const dir = path.join(WORK_ROOT, 'ssh');
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync('/run/sshd', { recursive: true });
  for (const k of ['id', 'hostkey']) {
    if (!fs.existsSync(path.join(dir, k))) {
      const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, k)]);
      if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
    }
  }
  fs.copyFileSync(path.join(dir, 'id.pub'), path.join(dir, 'authorized_keys'));
  // bash sources ~/.bashrc for every command sshd runs. This machine's runs `pyenv init`, which
  // can wait 60 s for a stale lock; a cluster node's start-up files are not what is measured, so
  // inside the simulated hosts (their own mount namespaces) root's ~/.bashrc is an empty file.
  const bashrc = path.join(os.userInfo().homedir, '.bashrc');
  const emptyRc = path.join(dir, 'empty-bashrc');
  fs.writeFileSync(emptyRc, '');
  await Promise.all(c.hosts.map(async (h) => {
    const conf = path.join(dir, `sshd_${h.name}.conf`);
    fs.writeFileSync(conf, [
      `ListenAddress ${h.ip}:22`, `HostKey ${dir}/hostkey`, `AuthorizedKeysFile ${dir}/authorized_keys`,
      `PidFile ${dir}/sshd_${h.name}.pid`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no',
      'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'PrintMotd no', 'MaxStartups 200', 'MaxSessions 200', 'Subsystem sftp /usr/lib/openssh/sftp-server', '',
    ].join('\n'));
    if (fs.existsSync(bashrc)) await h.exec(['mount', '--bind', emptyRc, bashrc]);
    await h.start(['/usr/sbin/sshd', '-f', conf, '-D', '-e'], /Server listening/);
  }));
  return `ssh -i ${dir}/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes`;
}

/** TakTuk's `broadcast put` from host 0 to the workers; `extra` e.g. ['-d', '1'] for a chain. */
export function taktukPut(c: Cluster, ssh: string, workers: SimHost[], extra: readonly string[], src: string, dest: string) {
  return c.hosts[0]!.exec(['taktuk', '-c', ssh, ...extra, ...workers.flatMap((w) => ['-m', w.ip]), 'broadcast', 'put', '[', src, ']', '[', dest, ']']);
}

const TCP_CHAIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), 'tcp-chain.js');
const TCP_CHAIN_PORT = 7777;

/**
 * The TCP floor (bench/lib/tcp-chain.ts): `src` from host 0 down a chain of plain TCP
 * connections through every worker, each writing `dest`. The receivers are listening before the
 * clock starts; the time runs from the send to the last receiver's exit.
 */
export async function tcpChain(workers: SimHost[], src: string, dest: string, origin: SimHost) {
  const hops: Array<Promise<void>> = [];
  for (let i = workers.length - 1; i >= 0; i--) {
    const next = workers[i + 1] ? [`${workers[i + 1]!.ip}:${TCP_CHAIN_PORT}`] : [];
    const child = await workers[i]!.start([process.execPath, TCP_CHAIN, 'recv', String(TCP_CHAIN_PORT), dest, ...next], /^listening/m);
    hops.push(new Promise<void>((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tcp-chain on ${workers[i]!.name} exited ${code}`))))));
  }
  return () => Promise.all([origin.exec([process.execPath, TCP_CHAIN, 'send', src, `${workers[0]!.ip}:${TCP_CHAIN_PORT}`]), ...hops]);
}

/** One scp per worker from host 0, all at once (`-r` for a directory). */
export function scpFanOut(c: Cluster, ssh: string, workers: SimHost[], src: string, dest: string, recursive = false) {
  const sshOpts = ssh.split(' ').slice(1);
  return Promise.all(workers.map((w) => c.hosts[0]!.exec(['scp', '-q', ...(recursive ? ['-r'] : []), ...sshOpts, src, `root@${w.ip}:${dest}`])));
}

/**
 * A directory to every worker at once as `tar c | ssh tar x` from host 0: what a user copying a
 * tree with symlinks does (scp -r follows symlinks and copies what they point to).
 */
export function tarSshFanOut(c: Cluster, ssh: string, workers: SimHost[], srcDir: string, dest: string) {
  return Promise.all(workers.map((w) => c.hosts[0]!.exec(['sh', '-c',
    `tar -C '${srcDir}' -cf - . | ${ssh} root@${w.ip} "mkdir -p '${dest}' && tar -C '${dest}' -xf -"`])));
}

/** The TakTuk variants every scenario runs: its default deployment and a `-d 1` chain. */
export const TAKTUK_VARIANTS = [['taktuk', []], ['taktuk-chain', ['-d', '1']]] as const;
