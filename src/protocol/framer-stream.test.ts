/**
 * The framer's streaming mode: long messages of streamable types come as pieces (the first with the header and at
 * least STREAM_PEEK_BYTES of body), everything else whole; the same messages at every split point (STYLE.md 7).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isProtocolError, ProtocolErrorCode } from './errors.js';
import { Framer, FramePiece, STREAM_PEEK_BYTES, streamTable } from './framer.js';
import { buildBind, buildParse, buildQuery, buildSync } from './frontend-builders.js';
import { FrontendCode } from './message-codes.js';
import { cut, streamChunks } from './testing.js';

function copyData(n: number, seed: number): Buffer {
  const m = Buffer.alloc(5 + n);
  m[0] = FrontendCode.CopyData;
  m.writeInt32BE(n + 4, 1);
  for (let i = 0; i < n; i++) m[5 + i] = (i * seed + 11) & 0xff;
  return m;
}

const STREAM = streamTable([FrontendCode.CopyData, FrontendCode.Query, FrontendCode.Bind]);
const opts = { streamAbove: 400, streamTypes: STREAM };
const bigBind = buildBind({ portal: 'p1', statement: 's1', params: ['x'.repeat(900), null, 'tail'] });
const messages = [
  buildQuery('SELECT 1'),
  copyData(1200, 7),
  buildSync(),
  buildQuery(`SELECT '${'q'.repeat(600)}'`),
  bigBind,
  buildParse('named', `SELECT '${'p'.repeat(700)}'`, []), // not streamable: held whole
  copyData(300, 3), // streamable type, but short: whole
];
const stream = Buffer.concat(messages);
const streamed = (m: Buffer) => m.length > 400 && m[0] !== FrontendCode.Parse;

describe('Framer streaming', () => {
  it('gives the same messages at every split point: long ones in pieces, the first carrying the peek', () => {
    for (let i = 0; i <= stream.length; i++) {
      const out = streamChunks(cut(stream, [i]), opts);
      assert.equal(out.error, null, `split at ${i}`);
      assert.deepEqual(
        out.messages.map((m) => m.raw),
        messages,
        `split at ${i}`,
      );
      out.messages.forEach((m, k) => {
        const msg = messages[k] as Buffer;
        assert.equal(m.pieces !== 'whole', streamed(msg), `split at ${i}, message ${k}`);
        if (m.pieces !== 'whole')
          assert.ok(
            m.firstBytes >= Math.min(msg.length, 5 + STREAM_PEEK_BYTES),
            `split at ${i}, message ${k}: first piece ${m.firstBytes}`,
          );
      });
    }
  });

  it('gives the same messages for every pair of split points around a streamed message', () => {
    const small = Buffer.concat([buildSync(), copyData(700, 5), buildSync()]);
    for (let i = 0; i <= small.length; i += 3) {
      for (let j = i; j <= small.length; j += 5) {
        const out = streamChunks(cut(small, [i, j]), opts);
        assert.deepEqual(
          out.messages.map((m) => m.raw),
          [buildSync(), copyData(700, 5), buildSync()],
          `split at ${i},${j}`,
        );
      }
    }
  });

  it('gives the same messages fed one byte at a time', () => {
    const out = streamChunks(
      [...stream].map((b) => Buffer.from([b])),
      opts,
    );
    assert.deepEqual(
      out.messages.map((m) => m.raw),
      messages,
    );
  });

  it('holdWhole() at the first piece returns the message as one Frame, at every split point', () => {
    for (let i = 0; i <= stream.length; i += 7) {
      const out = streamChunks(cut(stream, [i]), opts, (p) => p.type === FrontendCode.Bind);
      assert.equal(out.error, null);
      assert.deepEqual(
        out.messages.map((m) => m.raw),
        messages,
        `split at ${i}`,
      );
      assert.equal(out.messages[4]?.pieces, 'whole', `split at ${i}`);
    }
  });

  it('keeps no more than one chunk of a 10 MB message', () => {
    const msg = copyData(10 * 1024 * 1024, 13);
    const chunks = cut(
      msg,
      Array.from({ length: Math.floor(msg.length / 65536) }, (_, k) => (k + 1) * 65536),
    );
    const framer = new Framer({ streamAbove: 64 * 1024, streamTypes: STREAM });
    let maxRetained = 0;
    let total = 0;
    for (const c of chunks) {
      framer.push(c);
      for (let f = framer.read(); f !== undefined; f = framer.read()) {
        assert.ok(f instanceof FramePiece);
        total += f.bytes.length;
      }
      maxRetained = Math.max(maxRetained, framer.retainedBytes);
    }
    assert.equal(total, msg.length);
    assert.ok(maxRetained <= 65536 + 5 + STREAM_PEEK_BYTES, `retained ${maxRetained}`);
  });

  it('refuses a message held whole beyond maxHeldBytes at its header, streamed ones only beyond maxMessageBytes', () => {
    const limits = { ...opts, maxHeldBytes: 500, maxMessageBytes: 1100 };
    const parse = buildParse('n', `SELECT '${'p'.repeat(600)}'`, []);
    for (let i = 0; i <= 8; i++) {
      const out = streamChunks(cut(Buffer.concat([buildSync(), parse]), [i]), limits);
      assert.deepEqual(
        out.messages.map((m) => m.raw),
        [buildSync()],
      );
      assert.ok(
        isProtocolError(out.error) &&
          out.error.code === ProtocolErrorCode.TooLarge &&
          /read whole/.test(out.error.message),
        `split at ${i}`,
      );
    }
    assert.equal(streamChunks([copyData(1000, 1)], limits).error, null, 'streamed: within maxMessageBytes');
    const over = streamChunks([copyData(1200, 1)], limits).error;
    assert.ok(isProtocolError(over) && over.code === ProtocolErrorCode.TooLarge);
    const held = streamChunks([copyData(1000, 1)], limits, () => true).error;
    assert.ok(isProtocolError(held) && held.code === ProtocolErrorCode.TooLarge, 'holdWhole() beyond maxHeldBytes');
  });

  it('next() refuses to hand out a piece (a caller bug, not a protocol error)', () => {
    const framer = new Framer(opts);
    framer.push(copyData(1000, 1));
    assert.throws(
      () => framer.next(),
      (e) => e instanceof Error && !isProtocolError(e),
    );
  });
});
