export { ObjectStore, type PutResult } from './object-store.js';
