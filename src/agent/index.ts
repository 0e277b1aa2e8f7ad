export { Agent, describeBytes, hashFileForPublish, type AgentOptions, type BatchSummary, type FetchResult } from './agent.js';
export { parseDesc, descOf, type ObjectDesc } from './object-desc.js';
export { type PeerAddr, parsePeerAddr } from './peer-addr.js';
export { readStatuses, type AgentStatus } from './status-board.js';
export { FETCH_STALL_MS, CHAIN_WAIT_MS, type FetchOptions } from './fetcher.js';
export { TreePublisher, type Published } from './tree-publisher.js';
export { batchable, type BatchSink } from './batch-fetch.js';
export { Arrivals } from './arrivals.js';
export { DigestFeed, newStreamName, streamDesc, type StreamOrder } from './bcast-stream.js';
