/**
 * Reading PostgreSQL's base backup tar streams without extracting them: counting the files that go by (progress),
 * noticing the end-of-archive marker (a truncated archive is not a whole one), and picking a small member from the
 * head of the stream — BASE_BACKUP sends backup_label and tablespace_map before any data file. ustar, pax and GNU
 * headers; pure, whatever the chunking.
 */
import type { Readable } from 'node:stream';

const BLOCK = 512;
const padded = (size: number) => Math.ceil(size / BLOCK) * BLOCK;
const isZero = (b: Buffer) => b.every((x) => x === 0);

/**
 * Counts regular files in a ustar/pax/GNU tar stream from its 512-byte headers, whatever the chunking, and notes
 * the end-of-archive marker (two zero blocks) so a truncated archive is told from a whole one.
 */
export class TarCounter {
  #header = Buffer.alloc(0);
  /** Bytes of entry data (padded to 512) still to skip before the next header. */
  #skip = 0;
  #zeroBlocks = 0;
  ended = false;

  /** Feeds a chunk; returns the regular files whose headers it completed. */
  push(chunk: Buffer): number {
    let files = 0;
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - off);
        this.#skip -= n;
        off += n;
        continue;
      }
      const need = BLOCK - this.#header.length;
      const part = chunk.subarray(off, off + need);
      off += part.length;
      this.#header = this.#header.length === 0 ? Buffer.from(part) : Buffer.concat([this.#header, part]);
      if (this.#header.length < BLOCK) break;
      const h = this.#header;
      this.#header = Buffer.alloc(0);
      if (isZero(h)) {
        if (++this.#zeroBlocks === 2) this.ended = true;
        continue;
      }
      this.#zeroBlocks = 0;
      const type = String.fromCharCode(h[156] as number);
      const size = tarSize(h.subarray(124, 136));
      this.#skip = padded(size);
      if (type === '0' || type === '\0' || type === '7') files++;
    }
    return files;
  }
}

/** A tar header's size field: octal text, or base-256 when its first byte has the high bit set (GNU, > 8 GiB). */
export function tarSize(field: Buffer): number {
  if (((field[0] as number) & 0x80) !== 0) {
    let v = 0;
    for (let i = 1; i < field.length; i++) v = v * 256 + (field[i] as number);
    return v;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

/** A header's member name: ustar prefix + name, without a leading "./". */
export function tarName(h: Buffer): string {
  const field = (from: number, to: number) => h.subarray(from, to).toString('utf8').replace(/\0.*$/s, '');
  const name = field(0, 100);
  const prefix = h.subarray(257, 262).toString('latin1') === 'ustar' ? field(345, 500) : '';
  return (prefix ? `${prefix}/${name}` : name).replace(/^(\.\/)+/, '');
}

/**
 * The content of member `name` if it is among the first `maxEntries` entries of the tar stream, else null. Reads
 * no further than needed and destroys `src` when done. Only for small members (at most 1 MiB).
 */
export async function leadingMember(src: Readable, name: string, maxEntries = 16): Promise<Buffer | null> {
  let buf: Buffer = Buffer.alloc(0);
  let skip = 0;
  let entries = 0;
  try {
    for await (const c of src) {
      let chunk = c as Buffer;
      if (skip > 0) {
        const n = Math.min(skip, chunk.length);
        skip -= n;
        chunk = chunk.subarray(n);
      }
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (skip === 0 && buf.length >= BLOCK) {
        const h = buf.subarray(0, BLOCK);
        if (isZero(h)) return null;
        const size = tarSize(h.subarray(124, 136));
        if (tarName(h) === name) {
          if (size > 1 << 20) throw new Error(`tar member ${name} is ${size} bytes, more than expected`);
          if (buf.length < BLOCK + size) break;
          return Buffer.from(buf.subarray(BLOCK, BLOCK + size));
        }
        if (++entries >= maxEntries) return null;
        const total = BLOCK + padded(size);
        if (buf.length >= total) buf = buf.subarray(total);
        else {
          skip = total - buf.length;
          buf = Buffer.alloc(0);
        }
      }
    }
    return null;
  } finally {
    src.destroy();
  }
}
