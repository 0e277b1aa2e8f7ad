export { exportTree, type ExportStats } from './export.js';
export { importArchive, materialize, type ImportResult } from './import.js';
export { TOC_ENTRY_NAME } from './format.js';
