/**
 * The peer wire format, free of sockets so it can be tested and fuzzed alone.
 *
 *   frame := length:u32be  version:u8  type:u8  body:(length - 2 bytes)
 *
 * Control frames carry a UTF-8 JSON body; DATA frames carry `requestId:u32be` then raw bytes.
 * A frame longer than MAX_FRAME_BYTES, of another version or of an unknown type is a protocol
 * error: the connection that sent it is closed.
 */
import { DftfsError } from '../errors.js';

export const PROTOCOL_VERSION = 1;

/** One chunk (4 MiB) plus room for headers: nothing legitimate is larger. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024 + 64 * 1024;

export const FrameType = {
  CHALLENGE: 1,
  HELLO: 2,
  WELCOME: 3,
  GET: 4,
  DATA: 5,
  BUSY: 6,
  NOT_FOUND: 7,
  ERROR: 8,
} as const;
export type FrameTypeName = keyof typeof FrameType;
const TYPE_NAMES = new Map<number, FrameTypeName>(Object.entries(FrameType).map(([k, v]) => [v, k as FrameTypeName]));

export type Frame =
  | { type: 'DATA'; requestId: number; bytes: Buffer }
  | { type: Exclude<FrameTypeName, 'DATA'>; body: Record<string, unknown> };

export const protocolError = (msg: string) => new DftfsError('ERR_DFTFS_PROTOCOL', msg);

/**
 * The first 10 bytes of a DATA frame carrying `length` bytes: a sender writes them and then the
 * bytes themselves, instead of copying a 4 MiB chunk into a frame buffer of its own.
 */
export function encodeDataHeader(requestId: number, length: number): Buffer {
  if (2 + 4 + length > MAX_FRAME_BYTES) throw protocolError(`frame of ${2 + 4 + length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = Buffer.allocUnsafe(10);
  out.writeUInt32BE(2 + 4 + length, 0);
  out[4] = PROTOCOL_VERSION;
  out[5] = FrameType.DATA;
  out.writeUInt32BE(requestId, 6);
  return out;
}

export function encodeFrame(frame: Frame): Buffer {
  const type = FrameType[frame.type];
  if (frame.type === 'DATA') return Buffer.concat([encodeDataHeader(frame.requestId, frame.bytes.length), frame.bytes]);
  const json = Buffer.from(JSON.stringify(frame.body));
  if (json.length + 2 > MAX_FRAME_BYTES) throw protocolError(`frame of ${json.length + 2} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = Buffer.allocUnsafe(6 + json.length);
  out.writeUInt32BE(2 + json.length, 0);
  out[4] = PROTOCOL_VERSION;
  out[5] = type;
  json.copy(out, 6);
  return out;
}

/**
 * Incremental decoder: push bytes as they arrive, take whole frames out. Throws
 * ERR_DFTFS_PROTOCOL on anything malformed; the caller then closes the connection.
 */
export class FrameDecoder {
  private parts: Buffer[] = [];
  private buffered = 0;

  push(bytes: Buffer): Frame[] {
    this.parts.push(bytes);
    this.buffered += bytes.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(6);
      const length = head.readUInt32BE(0);
      if (length < 2 || length > MAX_FRAME_BYTES) throw protocolError(`frame length ${length} is outside 2..${MAX_FRAME_BYTES}`);
      if (this.buffered >= 5 && head[4] !== PROTOCOL_VERSION) throw protocolError(`protocol version ${head[4]} (this dftfs speaks ${PROTOCOL_VERSION})`);
      if (this.buffered < 4 + length) break;
      frames.push(decodeBody(this.take(4 + length).subarray(4)));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.parts[0]!.length >= n || this.parts.length === 1) return this.parts[0]!;
    const joined = Buffer.concat(this.parts);
    this.parts = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const joined = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    const out = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.parts = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}

function decodeBody(frame: Buffer): Frame {
  const typeName = TYPE_NAMES.get(frame[1]!);
  if (!typeName) throw protocolError(`unknown frame type ${frame[1]}`);
  if (typeName === 'DATA') {
    if (frame.length < 6) throw protocolError('DATA frame without a request id');
    return { type: 'DATA', requestId: frame.readUInt32BE(2), bytes: frame.subarray(6) };
  }
  let body: unknown;
  try {
    body = JSON.parse(frame.subarray(2).toString('utf8'));
  } catch {
    throw protocolError(`${typeName} frame body is not JSON`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw protocolError(`${typeName} frame body is not an object`);
  return { type: typeName, body: body as Record<string, unknown> };
}
