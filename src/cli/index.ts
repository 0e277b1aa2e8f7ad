export { runCli, createCli } from './main.js';
export type { CliIo } from './output.js';
