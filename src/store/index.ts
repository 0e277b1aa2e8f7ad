export { ObjectStore, SYNC_IO_MAX_BYTES, type PutResult } from './object-store.js';
export { tempBeside, isTempName } from './temp-name.js';
export { materialize, subtree, TreeWriter, type MaterializeOptions } from './materialize.js';
