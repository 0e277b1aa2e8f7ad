export { MAX_CHUNK_BYTES, TOC_VERSION, type EntryType, type Toc, type TocChunk, type TocEntry } from './types.js';
export { encodeToc, tocPieces, decodeToc, decodeTocDirs, validateToc, checkEntry, tocDigest, MAX_TOC_BYTES } from './codec.js';
export { merkleRoot, merkleDirs, dirDigest, compareNames } from './merkle.js';
export { formatModtime, formatModtimeMs, parseModtime } from './modtime.js';
export { checkEntryName, parentName, baseName, symlinkStaysInside, resolveInside, outsideRoot } from './paths.js';
export { diffToc, sameEntry, MAX_DELTA_PATHS, type TocDelta } from './delta.js';
export { TocView } from './toc-view.js';
