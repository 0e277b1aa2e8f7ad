export { ObjectStore, type PutResult } from './object-store.js';
export { tempBeside, isTempName } from './temp-name.js';
export { materialize, subtree, TreeWriter, type MaterializeOptions } from './materialize.js';
