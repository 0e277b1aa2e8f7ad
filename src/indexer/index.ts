export { indexTree, hashFile, type Hashed, type IndexOptions, type IndexResult, type IndexStats, type IndexProgress } from './indexer.js';
export { walkTree, type WalkItem } from './walk.js';
export { loadIndexState, saveIndexState, appendIndexJournal, type IndexState, type StateRecord } from './index-state.js';
export type { IndexWarning } from './warnings.js';
export { updateToc, type TocUpdate } from './update.js';
