/**
 * Bounds-checked reading of one message payload and exact-size writing of one message.
 *
 * Reader: every read checks the remaining length first and fails with a ProtocolError naming the message and
 * the field, so a hostile length or a missing NUL can never surface as a RangeError.
 * Writer: builders compute the exact size first, then write once into one `allocUnsafe` buffer (no growth, no
 * second copy); `finish()` checks the size computation was right.
 */
import { ProtocolError, ProtocolErrorCode } from './errors.js';

export class Reader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    /** Message name for error texts, e.g. "Bind". */
    readonly what: string,
    start = 0,
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, field: string): void {
    if (this.buf.length - this.pos < n) {
      throw new ProtocolError(
        ProtocolErrorCode.TruncatedField,
        `${this.what}: field "${field}" needs ${n} bytes, ${this.buf.length - this.pos} left`,
        { message: this.what, field, offset: this.pos },
      );
    }
  }

  byte(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++] as number;
  }

  int16(field: string): number {
    this.need(2, field);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  uint16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(field: string): number {
    this.need(4, field);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Index of the NUL ending the C string at `pos` (the string is `buf[pos, end)`); advances past the NUL. */
  cstringEnd(field: string): number {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) {
      throw new ProtocolError(
        ProtocolErrorCode.TruncatedField,
        `${this.what}: string field "${field}" has no terminating NUL`,
        { message: this.what, field, offset: this.pos },
      );
    }
    this.pos = end + 1;
    return end;
  }

  cstring(field: string): string {
    const start = this.pos;
    const end = this.cstringEnd(field);
    return this.buf.toString('utf8', start, end);
  }

  /** A view of the next `n` bytes (no copy). */
  bytes(n: number, field: string): Buffer {
    if (n < 0) throw badField(this.what, field, `negative length ${n}`);
    this.need(n, field);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A view of everything left. */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }

  /** PostgreSQL's pq_getmsgend: a message must end exactly after its last field. */
  end(): void {
    if (this.pos !== this.buf.length) {
      throw new ProtocolError(
        ProtocolErrorCode.TrailingBytes,
        `${this.what}: ${this.buf.length - this.pos} unexpected bytes after the last field`,
        { message: this.what, extra: this.buf.length - this.pos },
      );
    }
  }
}

export function badField(what: string, field: string, why: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.BadField, `${what}: invalid "${field}": ${why}`, { message: what, field });
}

/** Bytes a string takes as a C string; rejects an embedded NUL, which would end the field early on the wire. */
export function cstringSize(s: string, what: string, field: string): number {
  if (s.includes('\0')) throw badField(what, field, 'contains a NUL byte');
  return Buffer.byteLength(s, 'utf8') + 1;
}

export class Writer {
  readonly buf: Buffer;
  private pos = 0;

  /**
   * @param type the message type byte, or null for an untyped start-up packet
   * @param payloadSize bytes after the length word
   */
  constructor(type: number | null, payloadSize: number) {
    const header = type === null ? 4 : 5;
    this.buf = Buffer.allocUnsafe(header + payloadSize);
    if (type !== null) this.buf[this.pos++] = type;
    this.int32(payloadSize + 4);
  }

  byte(v: number): this {
    this.buf[this.pos++] = v;
    return this;
  }

  int16(v: number): this {
    this.pos = this.buf.writeInt16BE(v, this.pos);
    return this;
  }

  uint16(v: number): this {
    this.pos = this.buf.writeUInt16BE(v, this.pos);
    return this;
  }

  int32(v: number): this {
    this.pos = this.buf.writeInt32BE(v, this.pos);
    return this;
  }

  uint32(v: number): this {
    this.pos = this.buf.writeUInt32BE(v, this.pos);
    return this;
  }

  /** Caller has checked the string with `cstringSize`. */
  cstring(s: string): this {
    this.pos += this.buf.write(s, this.pos, 'utf8');
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  finish(): Buffer {
    // A mismatch here is a bug in a builder's size arithmetic, never bad input.
    if (this.pos !== this.buf.length) throw new Error(`Writer: wrote ${this.pos} of ${this.buf.length} bytes`);
    return this.buf;
  }
}
