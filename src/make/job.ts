import { parseDesc, parsePeerAddr, type ObjectDesc, type PeerAddr } from '../agent/index.js';
import { DftfsError } from '../errors.js';
import { checkEntryName } from '../toc/index.js';

/** One recipe line to run: what the shim captured from make, in tree-relative terms. */
export interface Job {
  id: string;
  /** Re-dispatches of the same job count up; a late result of an earlier attempt is ignored. */
  attempt: number;
  /** Working directory relative to the tree root (`.` for the root). */
  cwd: string;
  /** The shell's arguments after the shim: make's .SHELLFLAGS then the recipe line. */
  argv: string[];
  env: Record<string, string>;
  target: string;
  prereqs: string[];
  /** The TOC generation the worker's view must have reached. */
  generation: number;
}

/**
 * A path a job changed. `seq` numbers the worker's changes: jobs running side by side on one
 * worker each see the others' files too (another job's temp file between two of its commands),
 * and their results can reach the driver in any order, so the driver never takes an older change
 * of a path over a newer one it already applied from the same worker. A small file's bytes may
 * come along (`data`, base64), checked against `desc` before use: no fetch from the worker then.
 */
export type Output = { seq: number } & (
  | { name: string; type: 'reg'; mode: number; mtimeMs: number; desc: ObjectDesc; data?: string }
  | { name: string; type: 'dir'; mode: number }
  | { name: string; type: 'symlink'; linkName: string }
  | { name: string; type: 'deleted' });

export interface JobResult {
  id: string;
  attempt: number;
  worker: string;
  host: string;
  /** The worker's data plane, which holds the outputs. */
  addr?: PeerAddr;
  status: number;
  stdout: string;
  stderr: string;
  outputs: Output[];
  /** Files the job opened for reading through the mount. */
  reads: string[];
  /** True when no other job ran on the worker during this one (its reads are surely its own). */
  alone: boolean;
  ms: number;
}

const bad = (why: string) => new DftfsError('ERR_DFTFS_PROTOCOL', `malformed job message: ${why}`);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const name = (v: unknown, what: string): string => {
  if (!isStr(v)) throw bad(what);
  checkEntryName(v);
  return v;
};

export function parseJob(raw: unknown): Job {
  const j = raw as Record<string, unknown>;
  if (!j || typeof j !== 'object') throw bad('not an object');
  if (!isStr(j.id) || !isInt(j.attempt) || !isInt(j.generation)) throw bad('id, attempt or generation');
  if (!Array.isArray(j.argv) || !j.argv.every(isStr) || j.argv.length === 0) throw bad('argv');
  if (!Array.isArray(j.prereqs) || !j.prereqs.every(isStr)) throw bad('prereqs');
  if (!j.env || typeof j.env !== 'object' || !Object.values(j.env).every(isStr)) throw bad('env');
  if (!isStr(j.target)) throw bad('target');
  return { id: j.id, attempt: j.attempt, cwd: name(j.cwd, 'cwd'), argv: j.argv, env: j.env as Record<string, string>, target: j.target, prereqs: j.prereqs, generation: j.generation };
}

/**
 * A result at most this big (as JSON) travels in its NATS message. A bigger one (many outputs,
 * long output, a long list of reads) is stored as an object in the worker's host store, and its
 * message carries only a reference (`ResultRef`) that the driver fetches over the data plane,
 * verified by digest: NATS refuses a message over its max_payload (1 MiB by default).
 */
export const RESULT_MESSAGE_MAX_BYTES = 256 * 1024;
/** A result object above this size is refused. */
export const RESULT_OBJECT_MAX_BYTES = 64 * 1024 * 1024;

/** The message of a result sent by reference: which attempt of which job, from whom, and the object holding it. */
export interface ResultRef {
  id: string;
  attempt: number;
  worker: string;
  addr?: PeerAddr;
  ref: ObjectDesc;
}

export function parseResultRef(raw: unknown): ResultRef {
  const r = raw as Record<string, unknown>;
  if (!r || typeof r !== 'object') throw bad('not an object');
  if (!isStr(r.id) || !isInt(r.attempt) || !isStr(r.worker)) throw bad('result fields');
  const ref = parseDesc(r.ref);
  if (ref.size > RESULT_OBJECT_MAX_BYTES) throw bad(`a result of ${ref.size} bytes`);
  return { id: r.id, attempt: r.attempt, worker: r.worker, addr: parsePeerAddr(r.addr), ref };
}

/** Checks a result from a worker: every output name stays inside the tree. */
export function parseJobResult(raw: unknown): JobResult {
  const r = raw as Record<string, unknown>;
  if (!r || typeof r !== 'object') throw bad('not an object');
  if (!isStr(r.id) || !isInt(r.attempt) || !isStr(r.worker) || !isStr(r.host) || !isInt(r.status) || !isStr(r.stdout) || !isStr(r.stderr)) throw bad('result fields');
  if (!Array.isArray(r.outputs) || !Array.isArray(r.reads) || !r.reads.every(isStr)) throw bad('outputs or reads');
  const outputs: Output[] = r.outputs.map((o: Record<string, unknown>) => {
    const n = name(o?.name, 'output name');
    if (n === '.') throw bad('output name');
    if (!isInt(o.seq)) throw bad(`output ${n} seq`);
    const seq = o.seq;
    switch (o.type) {
      case 'reg':
        if (!isInt(o.mode) || typeof o.mtimeMs !== 'number' || (o.data !== undefined && !isStr(o.data))) throw bad(`output ${n}`);
        return { seq, name: n, type: 'reg', mode: o.mode & 0o7777, mtimeMs: o.mtimeMs, desc: parseDesc(o.desc), ...(isStr(o.data) ? { data: o.data } : {}) };
      case 'dir':
        if (!isInt(o.mode)) throw bad(`output ${n}`);
        return { seq, name: n, type: 'dir', mode: o.mode & 0o7777 };
      case 'symlink':
        if (!isStr(o.linkName)) throw bad(`output ${n}`);
        return { seq, name: n, type: 'symlink', linkName: o.linkName };
      case 'deleted':
        return { seq, name: n, type: 'deleted' };
      default:
        throw bad(`output ${n} type`);
    }
  });
  return {
    id: r.id, attempt: r.attempt, worker: r.worker, host: r.host, addr: parsePeerAddr(r.addr), status: r.status, stdout: r.stdout, stderr: r.stderr,
    outputs, reads: r.reads, alone: r.alone === true, ms: typeof r.ms === 'number' ? r.ms : 0,
  };
}
