export { ObjectStore, type PutResult } from './object-store.js';
export { tempBeside, isTempName } from './temp-name.js';
