/** Worker thread body of the hash pool: runs each job it is sent (hash-run.ts) and answers with its result. */
import { parentPort } from 'node:worker_threads';
import type { HashJob } from './hash-job.js';
import { runHashJob } from './hash-run.js';

parentPort!.on('message', (job: HashJob) => {
  parentPort!.postMessage(runHashJob(job));
});
