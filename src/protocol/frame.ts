/**
 * What the framer (framer.ts) returns and how it is set up: the message limits, `Frame` (a whole message, as views
 * into the chunk that holds it), `FramePiece` (a piece of a streamed message), `FramerMode` and `FramerOptions`.
 *
 * Wire format: https://www.postgresql.org/docs/15/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
 */

/** PostgreSQL's own ceiling for a message (PQ_LARGE_MESSAGE_LIMIT ≈ MaxAllocSize): the default towards servers. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024 * 1024;
/** PostgreSQL's limit for messages before authentication completes (PQ_SMALL_MESSAGE_LIMIT, pqcomm.h). */
export const PRE_AUTH_MAX_MESSAGE_BYTES = 10_000;
/** MAX_STARTUP_PACKET_LENGTH (10000, excluding the length word) + the length word; compared with the length word. */
export const MAX_STARTUP_PACKET_BYTES = 10_004;
/** `Frame.type` of an untyped start-up packet. */
export const STARTUP_FRAME_TYPE = 0;

/**
 * Body bytes a first piece carries at least (when the message has them): a Bind's portal and statement names
 * (NAMEDATALEN 64 each, with their terminators) fit.
 */
export const STREAM_PEEK_BYTES = 256;

export const FramerMode = {
  /** Untyped start-up packets: Int32 length + payload. */
  Startup: 'startup',
  /** Byte1 type + Int32 length + payload. */
  Regular: 'regular',
} as const;
export type FramerMode = (typeof FramerMode)[keyof typeof FramerMode];

export interface FramerOptions {
  /** Default 'regular' (a server connection); a client connection starts in 'startup'. */
  readonly mode?: FramerMode;
  /**
   * Limit on a regular message's length word. Default 1 GiB; use PRE_AUTH_MAX_MESSAGE_BYTES for clients until
   * they are authenticated.
   */
  readonly maxMessageBytes?: number;
  /** Limit on a start-up packet's length word. Default MAX_STARTUP_PACKET_BYTES. */
  readonly maxStartupBytes?: number;
  /**
   * If given, any other type byte fails with PROTOCOL_UNKNOWN_MESSAGE as soon as the header is seen (before its
   * body is buffered). E.g. FRONTEND_CODES for client connections.
   */
  readonly allowedTypes?: Iterable<number>;
  /** Stream messages of `streamTypes` longer than this many bytes (whole, on the wire); default: never. */
  readonly streamAbove?: number;
  /** The type bytes that may be streamed (e.g. streamTable([...])); default none. */
  readonly streamTypes?: Uint8Array | null;
  /** Limit for a message held whole (not streamed); default: maxMessageBytes. */
  readonly maxHeldBytes?: number;
}

/** A 256-entry table of type bytes for `streamTypes`: build it once and share it between framers. */
export function streamTable(types: Iterable<number>): Uint8Array {
  const t = new Uint8Array(256);
  for (const x of types) t[x & 0xff] = 1;
  return t;
}

/**
 * A piece of a streamed message, in order: forward `bytes` (a view, valid as long as the pushed chunk is). The
 * first piece starts with the header; the pieces of one message add up to it exactly.
 */
export class FramePiece {
  constructor(
    /** The message's type byte. */
    readonly type: number,
    /** The message's length word (the whole message's, not this piece's). */
    readonly length: number,
    readonly bytes: Buffer,
    readonly first: boolean,
    readonly last: boolean,
  ) {}
}

/**
 * One message. `raw` and `payload` are computed views, so a frame that is only forwarded costs one object.
 * Consecutive frames with the same `source` and adjacent offsets can be forwarded as one slice.
 */
export class Frame {
  constructor(
    /** Type byte; STARTUP_FRAME_TYPE (0) for start-up packets. */
    readonly type: number,
    /** The length word: counts itself and the payload, not the type byte. */
    readonly length: number,
    /** The buffer holding the message: the pushed chunk, or the framer's copy when it spanned chunks. */
    readonly source: Buffer,
    /** Where the message (its type byte, or length word for start-up packets) starts in `source`. */
    readonly offset: number,
    /** 5, or 4 for start-up packets. */
    readonly headerSize: number,
  ) {}

  /** Bytes of the whole message on the wire. */
  get rawLength(): number {
    return this.length + this.headerSize - 4;
  }

  /** The whole message including its header: forward this. */
  get raw(): Buffer {
    return this.source.subarray(this.offset, this.offset + this.rawLength);
  }

  /** The message body after the length word: parse this. */
  get payload(): Buffer {
    return this.source.subarray(this.offset + this.headerSize, this.offset + this.rawLength);
  }
}
