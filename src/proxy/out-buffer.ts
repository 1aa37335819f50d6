/**
 * Collects what one read produced for the other side and writes it at once. Consecutive frames that are adjacent
 * in the same source chunk become one slice, so a run of forwarded messages costs one `subarray`, and the whole batch
 * one `write` (or one writev under cork). Slices are views: safe because sockets hand us a fresh buffer per read.
 */
import type { Socket } from 'node:net';
import type { Frame } from '../protocol/index.js';

export class OutBuffer {
  /** Created on first use (an idle client should cost little). */
  private parts: Buffer[] | null = null;
  private src: Buffer | null = null;
  private start = 0;
  private end = 0;
  /** Bytes added since the last flush (for stats). */
  bytes = 0;

  addFrame(f: Frame): void {
    const len = f.rawLength;
    this.bytes += len;
    if (this.src === f.source && this.end === f.offset) {
      this.end += len;
      return;
    }
    this.cut();
    this.src = f.source;
    this.start = f.offset;
    this.end = f.offset + len;
  }

  addBuffer(b: Buffer): void {
    this.cut();
    this.bytes += b.length;
    (this.parts ??= []).push(b);
  }

  get empty(): boolean {
    return this.src === null && (this.parts === null || this.parts.length === 0);
  }

  /** Writes everything; returns the socket's `write` result (false: the caller should wait for 'drain'). */
  flushTo(socket: Socket): boolean {
    this.cut();
    const parts = this.parts;
    this.bytes = 0;
    if (parts === null || parts.length === 0) return true;
    if (socket.destroyed || !socket.writable) {
      parts.length = 0;
      return true;
    }
    let ok: boolean;
    if (parts.length === 1) {
      ok = socket.write(parts[0] as Buffer);
    } else {
      socket.cork();
      for (const p of parts) socket.write(p);
      socket.uncork();
      ok = socket.writableLength < socket.writableHighWaterMark;
    }
    parts.length = 0;
    return ok;
  }

  /** Everything collected as one buffer, and reset (admin replies, tests). */
  take(): Buffer {
    this.cut();
    const b = Buffer.concat(this.parts ?? []);
    if (this.parts) this.parts.length = 0;
    this.bytes = 0;
    return b;
  }

  /** Drops everything collected (the destination went away). */
  reset(): void {
    this.src = null;
    if (this.parts) this.parts.length = 0;
    this.bytes = 0;
  }

  private cut(): void {
    if (this.src === null) return;
    const src = this.src;
    (this.parts ??= []).push(this.start === 0 && this.end === src.length ? src : src.subarray(this.start, this.end));
    this.src = null;
  }
}
