/**
 * The job spawner's process (see spawner.ts): runs each job it is sent with runCaptured and sends
 * back its status and output. It imports almost nothing, so it stays small and forks fast.
 */
import { runCaptured } from './run-captured.js';
import type { SpawnReply, SpawnRequest } from './spawner.js';

const stopping = new AbortController();
const send = (r: SpawnReply) => process.send?.(r);

process.on('message', (m: SpawnRequest) => {
  if (m.type === 'stop') {
    stopping.abort();
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
