/**
 * Incremental frame splitter for one direction of one connection: chunks in, whole messages out.
 *
 * Wire format (https://www.postgresql.org/docs/15/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS):
 * regular messages are Byte1 type + Int32 length (counting itself, not the type byte) + payload; the first
 * packets of a connection (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) have no type byte.
 *
 * Zero-copy: a message wholly inside the pushed chunk is returned as a view into that chunk. Only a message
 * that spans chunks is copied, once, into a buffer of its own (grown geometrically, so a peer announcing a huge
 * length costs memory only as its bytes actually arrive). The Framer holds at most the current chunk plus one
 * partial message, and drops its reference to a chunk once it is drained.
 *
 * Views are only valid as long as the chunk is: a caller that reuses its read buffer (`net.Socket` `onread`)
 * must finish with, or copy, every frame before reading into that buffer again.
 *
 * Streaming (`streamAbove`, `streamTypes`; used with `read()`): a message of a streamable type longer than
 * `streamAbove` is not assembled. Once its header and its first STREAM_PEEK_BYTES body bytes have arrived it is
 * returned as a first FramePiece, then as further pieces as its bytes arrive, each a view into the pushed chunk —
 * so a 1 GB message costs the framer no more than one chunk (pgBouncer forwards large packets the same way). The
 * first piece carries enough of the body to read statement and portal names; a consumer that must have the whole
 * message after all (to rewrite it) calls `holdWhole()` at once and later gets it as one Frame, within
 * `maxHeldBytes`. A message that is not streamed is held whole and must fit `maxHeldBytes` as well.
 *
 * Errors: a bad length or disallowed type byte makes `next()` throw a `ProtocolError`; the framer then stays
 * failed (every later `next()` throws the same error, `push()` is ignored) because the stream cannot be
 * resynchronised. Nothing else is ever thrown for any input bytes.
 */
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  Frame,
  FramePiece,
  FramerMode,
  type FramerOptions,
  MAX_STARTUP_PACKET_BYTES,
  STARTUP_FRAME_TYPE,
  STREAM_PEEK_BYTES,
} from './frame.js';
import { describeType, ProtocolCode } from './message-codes.js';

// The framer's own types and limits, for importers of framer.js.
export * from './frame.js';

/** Below this a spanning message's buffer is allocated at its full size; above it, grown as bytes arrive. */
const INITIAL_PARTIAL_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);
/** One 256-entry table per `allowedTypes` object: a proxy has thousands of framers and a handful of type sets. */
const ALLOWED_TABLES = new WeakMap<object, Uint8Array>();

function allowedTable(types: Iterable<number>): Uint8Array {
  let t = ALLOWED_TABLES.get(types);
  if (t === undefined) {
    t = new Uint8Array(256);
    for (const x of types) t[x & 0xff] = 1;
    ALLOWED_TABLES.set(types, t);
  }
  return t;
}

export class Framer {
  /** Adjustable, e.g. raised from PRE_AUTH_MAX_MESSAGE_BYTES once the client is authenticated. */
  maxMessageBytes: number;
  maxStartupBytes: number;
  /** Streaming settings: adjustable between messages (e.g. turned on once a client has logged in). */
  streamAbove: number;
  streamTypes: Uint8Array | null;
  maxHeldBytes: number;
  private modeValue: FramerMode;
  private readonly allowed: Uint8Array | null;

  private chunk: Buffer = EMPTY;
  private pos = 0;
  /** Header bytes of a message whose header itself was cut by a chunk boundary (allocated when first needed). */
  private head: Buffer | null = null;
  private headFill = 0;
  /** The copy of a message that spans chunks; null when none is in progress. */
  private part: Buffer | null = null;
  private partFill = 0;
  private partTotal = 0;
  private partType = 0;
  private partLength = 0;
  private failure: ProtocolError | null = null;
  /** A streamed message: bytes not returned yet (0: none in progress). */
  private streamLeft = 0;
  /** The part buffer only collects the first piece of a streamed message (its peek), not a whole message. */
  private peeking = false;
  /** The first piece just returned: `holdWhole()` may still turn its message into a whole Frame. */
  private firstPiece: FramePiece | null = null;

  constructor(options: FramerOptions = {}) {
    this.modeValue = options.mode ?? FramerMode.Regular;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxStartupBytes = options.maxStartupBytes ?? MAX_STARTUP_PACKET_BYTES;
    this.allowed = options.allowedTypes ? allowedTable(options.allowedTypes) : null;
    this.streamAbove = options.streamAbove ?? Infinity;
    this.streamTypes = options.streamTypes ?? null;
    this.maxHeldBytes = options.maxHeldBytes ?? Infinity;
  }

  get mode(): FramerMode {
    return this.modeValue;
  }

  /**
   * The framer switches to 'regular' by itself after a StartupMessage; set the mode explicitly only for unusual
   * flows. Only allowed between messages.
   */
  setMode(mode: FramerMode): void {
    if (this.headFill > 0 || this.part !== null || this.streamLeft > 0)
      throw new Error('Framer.setMode() in the middle of a message');
    this.modeValue = mode;
  }

  /** The error that stopped this framer, if any. */
  get error(): ProtocolError | null {
    return this.failure;
  }

  /**
   * Input bytes received but not yet returned as frames. After an SSLRequest/GSSENCRequest frame this must be 0
   * before answering 'S'/'G': bytes sent ahead of the TLS handshake are an injection attempt (CVE-2021-23214).
   */
  get bufferedBytes(): number {
    return this.chunk.length - this.pos + this.headFill + (this.part === null ? 0 : this.partFill);
  }

  /** Memory this framer keeps alive: the undrained chunk plus the partial message's buffer. */
  get retainedBytes(): number {
    return this.chunk.length + (this.part === null ? 0 : this.part.length);
  }

  /**
   * Hands the framer the next chunk. Call `next()` until it returns undefined before pushing again (pause the
   * socket meanwhile if frames cannot be handled yet): this is what bounds the framer's memory.
   */
  push(chunk: Buffer): void {
    if (this.failure) return;
    if (this.pos < this.chunk.length) throw new Error('Framer.push() before next() returned undefined');
    this.chunk = chunk;
    this.pos = 0;
  }

  /**
   * The next complete message, or undefined when more bytes are needed. Throws only ProtocolError. For framers
   * that never stream (no `streamTypes`); streaming consumers use `read()`.
   */
  next(): Frame | undefined {
    const f = this.read();
    if (f instanceof FramePiece) throw new Error('Framer.next() on a streaming framer: use read()');
    return f;
  }

  /** The next complete message or piece of a streamed message, or undefined when more bytes are needed. */
  read(): Frame | FramePiece | undefined {
    if (this.failure) throw this.failure;
    this.firstPiece = null;
    try {
      const frame =
        this.streamLeft > 0
          ? this.nextPiece()
          : this.headFill > 0 || this.part !== null
            ? this.continuePartial()
            : this.fromChunk();
      if (frame === undefined) {
        this.chunk = EMPTY; // everything is consumed or copied: let the caller's buffer go
        this.pos = 0;
      } else if (frame instanceof FramePiece) {
        if (frame.first) this.firstPiece = frame;
      } else if (this.modeValue === FramerMode.Startup) {
        this.afterStartupFrame(frame);
      }
      return frame;
    } catch (err) {
      if (err instanceof ProtocolError) this.fail(err);
      throw err;
    }
  }

  /**
   * Called right after `read()` returned a first piece: that message is held and returned whole instead (the
   * consumer must rewrite it). Throws PROTOCOL_TOO_LARGE when it is longer than `maxHeldBytes`.
   */
  holdWhole(): void {
    const first = this.firstPiece;
    if (first === null) throw new Error('Framer.holdWhole() not right after a first piece');
    this.firstPiece = null;
    const hs = this.headerSize;
    const total = first.length + hs - 4;
    if (first.length > this.maxHeldBytes) {
      const err = tooLargeHeld(first.type, first.length, this.maxHeldBytes);
      this.fail(err);
      throw err;
    }
    this.streamLeft = 0;
    this.beginPart(first.type, first.length, total, first.bytes);
  }

  private fail(err: ProtocolError): void {
    this.failure = err;
    this.chunk = EMPTY;
    this.pos = 0;
    this.part = null;
    this.headFill = 0;
    this.streamLeft = 0;
    this.peeking = false;
  }

  /** A message longer than streamAbove, of a streamable type, that does not fit what has arrived. */
  private streams(type: number, total: number): boolean {
    return (
      total > this.streamAbove &&
      total > STREAM_PEEK_BYTES + 5 &&
      this.streamTypes !== null &&
      this.streamTypes[type] === 1
    );
  }

  /** The next piece of the streamed message in progress, from the current chunk. */
  private nextPiece(): FramePiece | undefined {
    const avail = this.chunk.length - this.pos;
    if (avail === 0) return undefined;
    const take = Math.min(avail, this.streamLeft);
    const bytes = this.chunk.subarray(this.pos, this.pos + take);
    this.pos += take;
    this.streamLeft -= take;
    return new FramePiece(this.partType, this.partLength, bytes, false, this.streamLeft === 0);
  }

  /** Starts streaming with `head` (header and peeked body) as the first piece. */
  private firstOf(type: number, length: number, total: number, head: Buffer): FramePiece {
    this.partType = type;
    this.partLength = length;
    this.streamLeft = total - head.length;
    return new FramePiece(type, length, head, true, this.streamLeft === 0);
  }

  private get headerSize(): number {
    return this.modeValue === FramerMode.Regular ? 5 : 4;
  }

  private fromChunk(): Frame | FramePiece | undefined {
    const chunk = this.chunk;
    const pos = this.pos;
    const avail = chunk.length - pos;
    if (avail === 0) return undefined;
    const hs = this.headerSize;
    if (avail < hs) {
      this.head ??= Buffer.allocUnsafe(5);
      chunk.copy(this.head, 0, pos);
      this.headFill = avail;
      this.pos = chunk.length;
      return undefined;
    }
    const type = hs === 5 ? (chunk[pos] as number) : STARTUP_FRAME_TYPE;
    const length = chunk.readInt32BE(pos + hs - 4);
    this.check(type, length);
    const total = length + hs - 4;
    // A streamed message comes as pieces even when it arrived whole: the same input gives the same output
    // wherever the chunks were cut.
    if (this.streams(type, total)) {
      if (avail >= total) {
        this.pos = pos + total;
        return this.firstOf(type, length, total, chunk.subarray(pos, pos + total));
      }
      this.pos = chunk.length;
      if (avail >= hs + STREAM_PEEK_BYTES) return this.firstOf(type, length, total, chunk.subarray(pos));
      this.beginPeek(type, length, chunk.subarray(pos));
      return undefined;
    }
    this.checkHeld(type, length);
    if (avail >= total) {
      this.pos = pos + total;
      return new Frame(type, length, chunk, pos, hs);
    }
    this.pos = chunk.length;
    this.beginPart(type, length, total, chunk.subarray(pos));
    return undefined;
  }

  private beginPeek(type: number, length: number, first: Buffer): void {
    this.beginPart(type, length, this.headerSize + STREAM_PEEK_BYTES, first);
    this.peeking = true;
  }

  private checkHeld(type: number, length: number): void {
    if (length > this.maxHeldBytes) throw tooLargeHeld(type, length, this.maxHeldBytes);
  }

  private continuePartial(): Frame | FramePiece | undefined {
    const hs = this.headerSize;
    if (this.part === null) {
      const head = this.head as Buffer; // headFill > 0: fromChunk allocated it
      const take = Math.min(hs - this.headFill, this.chunk.length - this.pos);
      this.chunk.copy(head, this.headFill, this.pos, this.pos + take);
      this.headFill += take;
      this.pos += take;
      if (this.headFill < hs) return undefined;
      const type = hs === 5 ? (head[0] as number) : STARTUP_FRAME_TYPE;
      const length = head.readInt32BE(hs - 4);
      this.check(type, length);
      this.headFill = 0;
      const total = length + hs - 4;
      if (this.streams(type, total)) this.beginPeek(type, length, head.subarray(0, hs));
      else {
        this.checkHeld(type, length);
        this.beginPart(type, length, total, head.subarray(0, hs));
      }
    }
    let part = this.part as Buffer;
    const take = Math.min(this.partTotal - this.partFill, this.chunk.length - this.pos);
    if (take > 0) {
      if (this.partFill + take > part.length) {
        // Grow geometrically: total copying stays O(message size) while memory tracks bytes received.
        const grown = Buffer.allocUnsafe(Math.min(this.partTotal, Math.max(part.length * 2, this.partFill + take)));
        part.copy(grown, 0, 0, this.partFill);
        part = grown;
        this.part = grown;
      }
      this.chunk.copy(part, this.partFill, this.pos, this.pos + take);
      this.partFill += take;
      this.pos += take;
    }
    if (this.partFill < this.partTotal) return undefined;
    this.part = null;
    if (this.peeking) {
      this.peeking = false;
      return this.firstOf(this.partType, this.partLength, this.partLength + hs - 4, part.subarray(0, this.partFill));
    }
    return new Frame(this.partType, this.partLength, part, 0, hs);
  }

  private beginPart(type: number, length: number, total: number, first: Buffer): void {
    const part = Buffer.allocUnsafe(Math.min(total, Math.max(INITIAL_PARTIAL_BYTES, first.length)));
    first.copy(part, 0);
    this.part = part;
    this.partFill = first.length;
    this.partTotal = total;
    this.partType = type;
    this.partLength = length;
  }

  private check(type: number, length: number): void {
    if (this.modeValue === FramerMode.Startup) {
      // The smallest start-up packet is a length word plus the version/request code.
      if (length < 8) {
        throw new ProtocolError(ProtocolErrorCode.BadStartup, `invalid length of startup packet: ${length}`, {
          length,
        });
      }
      if (length > this.maxStartupBytes) {
        throw new ProtocolError(
          ProtocolErrorCode.TooLarge,
          `startup packet length ${length} exceeds the limit of ${this.maxStartupBytes} bytes`,
          { length, limit: this.maxStartupBytes },
        );
      }
      return;
    }
    if (this.allowed !== null && this.allowed[type] !== 1) {
      throw new ProtocolError(ProtocolErrorCode.UnknownMessage, `unexpected message type ${describeType(type)}`, {
        type,
      });
    }
    if (length < 4) {
      throw new ProtocolError(
        ProtocolErrorCode.BadLength,
        `invalid message length ${length} for message type ${describeType(type)}`,
        { type, length },
      );
    }
    if (length > this.maxMessageBytes) {
      throw new ProtocolError(
        ProtocolErrorCode.TooLarge,
        `message ${describeType(type)} of length ${length} exceeds the limit of ${this.maxMessageBytes} bytes`,
        { type, length, limit: this.maxMessageBytes },
      );
    }
  }

  /** After a StartupMessage the connection speaks typed messages; after the three requests it does not. */
  private afterStartupFrame(frame: Frame): void {
    const code = frame.source.readInt32BE(frame.offset + 4);
    const request =
      code === ProtocolCode.SSLRequest || code === ProtocolCode.GSSENCRequest || code === ProtocolCode.CancelRequest;
    if (!request) this.modeValue = FramerMode.Regular;
  }
}

function tooLargeHeld(type: number, length: number, limit: number): ProtocolError {
  return new ProtocolError(
    ProtocolErrorCode.TooLarge,
    `message ${describeType(type)} of length ${length} exceeds the limit of ${limit} bytes for messages read whole`,
    { type, length, limit },
  );
}
