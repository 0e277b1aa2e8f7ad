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
 *
 * A frame that arrives in one piece is decoded in place. A DATA frame spread over several reads
 * (4 MiB comes in ~64 KiB pieces) is copied once into a buffer of its own size as they arrive, so
 * the pieces are free at once and no joined copy of everything buffered is made. That buffer is
 * allocated from the header alone, so a side that never receives DATA (the server) refuses it
 * there: six bytes from an unauthenticated peer must not cost 4 MiB. Other frames are small and
 * are joined from their own pieces once complete.
 *
 * With `transient` input (a socket reading into one reused buffer), nothing of a pushed buffer is
 * kept or handed out after `push` returns: a DATA frame within one read is copied too. A DATA
 * frame's buffer comes from `dataBuffer` when given (a BufferPool's `take`).
 */
export interface FrameDecoderOptions {
  /** False for a side that is never sent DATA (the server): a DATA header is refused at once. */
  acceptsData?: boolean;
  /** Pushed buffers are overwritten after `push` returns. */
  transient?: boolean;
  /** Where a DATA frame's body (everything after its length field) is assembled. */
  dataBuffer?: (length: number) => Buffer;
}

export class FrameDecoder {
  /** The first bytes of a frame, until its length, version and type are known. */
  private head = Buffer.alloc(0);
  /** A DATA frame being filled (everything after its length field), and how much of it has come. */
  private body: Buffer | undefined;
  private filled = 0;
  /** The pieces of another frame, and how many bytes it still lacks. */
  private pieces: Buffer[] = [];
  private missing = 0;

  private readonly acceptsData: boolean;
  private readonly transient: boolean;
  private readonly dataBuffer: (length: number) => Buffer;

  constructor(opts: FrameDecoderOptions = {}) {
    this.acceptsData = opts.acceptsData ?? true;
    this.transient = opts.transient ?? false;
    this.dataBuffer = opts.dataBuffer ?? ((length) => Buffer.allocUnsafe(length));
  }

  push(bytes: Buffer): Frame[] {
    const frames: Frame[] = [];
    let at = 0;
    while (at < bytes.length) {
      if (this.body) {
        const n = Math.min(bytes.length - at, this.body.length - this.filled);
        bytes.copy(this.body, this.filled, at, at + n);
        this.filled += n;
        at += n;
        if (this.filled === this.body.length) {
          frames.push(decodeBody(this.body));
          this.body = undefined;
        }
        continue;
      }
      if (this.missing > 0) {
        const n = Math.min(bytes.length - at, this.missing);
        this.pieces.push(this.keep(bytes.subarray(at, at + n)));
        this.missing -= n;
        at += n;
        if (this.missing === 0) {
          frames.push(decodeBody(Buffer.concat(this.pieces)));
          this.pieces = [];
        }
        continue;
      }
      if (this.head.length === 0 && bytes.length - at >= HEAD_BYTES) {
        const length = this.checkHead(bytes.subarray(at, at + HEAD_BYTES));
        if (bytes.length - at >= 4 + length) {
          const whole = bytes.subarray(at + 4, at + 4 + length);
          frames.push(decodeBody(whole[1] === FrameType.DATA && this.transient ? this.copyData(whole) : whole));
          at += 4 + length;
        } else {
          this.start(bytes.subarray(at + 4, at + HEAD_BYTES), length, frames);
          at += HEAD_BYTES;
        }
        continue;
      }
      const n = Math.min(HEAD_BYTES - this.head.length, bytes.length - at);
      this.head = Buffer.concat([this.head, bytes.subarray(at, at + n)]);
      at += n;
      if (this.head.length >= 4) {
        const head = this.head;
        const length = this.checkHead(head);
        if (head.length === HEAD_BYTES) {
          this.head = Buffer.alloc(0);
          this.start(head.subarray(4), length, frames);
        }
      }
    }
    return frames;
  }

  /**
   * A frame whose version and type (`first`) have come, `length` bytes after its length field:
   * decoded into `frames` at once if that is all of it (a frame with no body), else made ready.
   */
  private start(first: Buffer, length: number, frames: Frame[]): void {
    if (length === first.length) frames.push(decodeBody(Buffer.from(first)));
    else if (first[1] === FrameType.DATA) {
      this.body = this.dataBuffer(length);
      first.copy(this.body);
      this.filled = first.length;
    } else {
      this.pieces = [Buffer.from(first)];
      this.missing = length - first.length;
    }
  }

  /** A piece to hold on to after `push` returns. */
  private keep(piece: Buffer): Buffer {
    return this.transient ? Buffer.from(piece) : piece;
  }

  private copyData(body: Buffer): Buffer {
    const out = this.dataBuffer(body.length);
    body.copy(out);
    return out;
  }

  /** Checks a frame's length, then its version and type once they are there: returns the length. */
  private checkHead(head: Buffer): number {
    const length = head.readUInt32BE(0);
    if (length < 2 || length > MAX_FRAME_BYTES) throw protocolError(`frame length ${length} is outside 2..${MAX_FRAME_BYTES}`);
    if (head.length >= 5 && head[4] !== PROTOCOL_VERSION) throw protocolError(`protocol version ${head[4]} (this dftfs speaks ${PROTOCOL_VERSION})`);
    if (head.length >= 6 && !TYPE_NAMES.has(head[5]!)) throw protocolError(`unknown frame type ${head[5]}`);
    if (head.length >= 6 && head[5] === FrameType.DATA && !this.acceptsData) throw protocolError('unexpected DATA frame');
    return length;
  }
}

/** Length, version and type: what is known of a frame before its body. */
const HEAD_BYTES = 6;

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
