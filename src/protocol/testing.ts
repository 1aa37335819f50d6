/**
 * Helpers for the codec's tests (not used by production code): a seeded PRNG and a framer driver that records
 * what came out, so split-point and fuzz tests can compare runs.
 */
import { ProtocolError } from './errors.js';
import { FramePiece, Framer, type FramerOptions } from './framer.js';

/** mulberry32: a small, fast, seeded PRNG; returns floats in [0, 1). Deterministic across runs and platforms. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randInt(rand: () => number, n: number): number {
  return Math.floor(rand() * n);
}

export interface FramedOutput {
  /** Each frame's type and a copy of its raw bytes. */
  readonly frames: { type: number; raw: Buffer }[];
  readonly error: ProtocolError | null;
  /** Largest `retainedBytes` seen after draining a chunk. */
  readonly maxRetained: number;
}

/** Pushes `chunks` one by one, draining after each; stops at the first ProtocolError. */
export function frameChunks(chunks: readonly Buffer[], options: FramerOptions = {}): FramedOutput {
  const framer = new Framer(options);
  const frames: { type: number; raw: Buffer }[] = [];
  let maxRetained = 0;
  try {
    for (const chunk of chunks) {
      framer.push(chunk);
      for (let f = framer.next(); f !== undefined; f = framer.next()) {
        frames.push({ type: f.type, raw: Buffer.from(f.raw) });
      }
      maxRetained = Math.max(maxRetained, framer.retainedBytes);
    }
  } catch (err) {
    if (err instanceof ProtocolError) return { frames, error: err, maxRetained };
    throw err;
  }
  return { frames, error: null, maxRetained };
}

/** `buf` cut at the given offsets (sorted, within bounds). */
export function cut(buf: Buffer, offsets: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const o of offsets) {
    out.push(buf.subarray(prev, o));
    prev = o;
  }
  out.push(buf.subarray(prev));
  return out;
}

export interface StreamedOutput {
  /** Each message's type, its bytes put together, and how it came: 'whole' (a Frame) or the number of pieces. */
  readonly messages: { type: number; raw: Buffer; pieces: number | 'whole'; firstBytes: number }[];
  readonly error: ProtocolError | null;
  readonly maxRetained: number;
}

/**
 * Like frameChunks for a streaming framer (`read()`): pieces are put back together per message. `hold` decides,
 * at a message's first piece, to take it whole instead (`holdWhole()`).
 */
export function streamChunks(
  chunks: readonly Buffer[],
  options: FramerOptions,
  hold: (p: FramePiece) => boolean = () => false,
): StreamedOutput {
  const framer = new Framer(options);
  const messages: { type: number; raw: Buffer; pieces: number | 'whole'; firstBytes: number }[] = [];
  let parts: Buffer[] = [];
  let firstBytes = 0;
  let maxRetained = 0;
  try {
    for (const chunk of chunks) {
      framer.push(chunk);
      for (let f = framer.read(); f !== undefined; f = framer.read()) {
        if (!(f instanceof FramePiece)) {
          messages.push({ type: f.type, raw: Buffer.from(f.raw), pieces: 'whole', firstBytes: f.rawLength });
          continue;
        }
        if (f.first && hold(f)) {
          framer.holdWhole();
          continue;
        }
        if (f.first) firstBytes = f.bytes.length;
        parts.push(Buffer.from(f.bytes));
        if (f.last) {
          messages.push({ type: f.type, raw: Buffer.concat(parts), pieces: parts.length, firstBytes });
          parts = [];
        }
      }
      maxRetained = Math.max(maxRetained, framer.retainedBytes);
    }
  } catch (err) {
    if (err instanceof ProtocolError) return { messages, error: err, maxRetained };
    throw err;
  }
  return { messages, error: null, maxRetained };
}
