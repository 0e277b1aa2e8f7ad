export { TreeMount, DEFAULT_FETCH_TIMEOUT_MS, type TreeMountOptions } from './tree-mount.js';
export { FuseMount, cleanStaleMount, fusermountUnmount, mountedAt, ATTR_TIMEOUT_S, type MountOptions } from './mount.js';
export { createFuseOps, type FuseOps, type FuseOpsOptions } from './fuse-ops.js';
export { tocName, entryAttr } from './entry-attr.js';
export { TocFollower } from './toc-follower.js';
export { UpperLayer } from './upper-layer.js';
export { AgentObjectSource, type ObjectSource, type LowerFile } from './lower-file.js';
