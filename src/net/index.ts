export { PROTOCOL_VERSION, MAX_FRAME_BYTES, FrameDecoder, encodeFrame, type Frame } from './frame.js';
export { PeerServer, SLOT_IDLE_MS, HANDSHAKE_TIMEOUT_MS, type ChunkSource, type PeerServerOptions } from './peer-server.js';
export { PeerClient, PEER_STALL_MS, newDataFramePool, type GetResult, type PeerClientOptions } from './peer-client.js';
export { BufferPool } from './buffer-pool.js';
export { RateLimiter, parseRate } from './rate-limit.js';
export { isStreamName, isObjectName, type GetRequest, type ObjectName, type PeerIdentity, type StreamName } from './messages.js';
export { tlsKey, TLS_PSK_IDENTITY } from './tls.js';
