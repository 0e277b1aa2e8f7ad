export { exportTree, type ExportStats } from './export.js';
export { importArchive, type ImportResult } from './import.js';
export { TOC_ENTRY_NAME } from './format.js';
