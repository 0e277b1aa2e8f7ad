export { Driver, type DriveOptions, type DriveSummary, type UndeclaredRead } from './driver.js';
export { Worker, HEARTBEAT_MS } from './worker.js';
export { parseJob, parseJobResult, type Job, type JobResult, type Output } from './job.js';
export { SHIM_SCRIPT, MAKE_EVALS } from './shim.js';
export { fetchOutputs, writeOutputs } from './apply-outputs.js';
