/**
 * The job spawner's process (see spawner.ts): runs each job it is sent with runCaptured and sends
 * back its status and output, and reads the files it is sent through the mount (readThrough). It
 * imports almost nothing, so it stays small and forks fast.
 */
import fsp from 'node:fs/promises';
import { runCaptured } from './run-captured.js';
import type { SpawnReply, SpawnRequest } from './spawner.js';

/** Files read through at once: each read waiting on the mount holds one of libfuse's threads. */
const READS_AT_ONCE = 2;
const READ_BYTES = 1024 * 1024;

const stopping = new AbortController();
const send = (r: SpawnReply) => process.send?.(r);
const toRead: string[] = [];
const buffers: Buffer[] = [];
let readers = 0;

/** Reads the queued files to their end (errors ignored: a file gone or unreadable just is not cached). */
async function readQueued(): Promise<void> {
  readers++;
  const buf = buffers.pop() ?? Buffer.allocUnsafe(READ_BYTES);
  try {
    for (let file = toRead.shift(); file !== undefined; file = toRead.shift()) {
      const fh = await fsp.open(file, 'r').catch(() => undefined);
      try {
        while (fh && !stopping.signal.aborted && (await fh.read(buf, 0, READ_BYTES, null)).bytesRead > 0);
      } catch {
        // As above.
      } finally {
        await fh?.close().catch(() => undefined);
        send({ read: file });
      }
    }
  } finally {
    buffers.push(buf);
    readers--;
  }
}

process.on('message', (m: SpawnRequest) => {
  if (m.type === 'stop') {
    stopping.abort();
    return;
  }
  if (m.type === 'read') {
    toRead.push(m.file);
    if (readers < READS_AT_ONCE) void readQueued();
    return;
  }
  void runCaptured(m.argv, { cwd: m.cwd, env: m.env, maxBytes: m.maxBytes, abort: stopping.signal })
    .then((c) => send({ id: m.id, ...c }));
});

process.send?.({ ready: true } satisfies SpawnReply);

// The worker is gone (exited or killed): end its jobs, then go.
process.on('disconnect', () => {
  stopping.abort();
  process.exit(0);
});
