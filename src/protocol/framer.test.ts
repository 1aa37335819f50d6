import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildBindComplete,
  buildCommandComplete,
  buildDataRow,
  buildParseComplete,
  buildReadyForQuery,
  buildRowDescription,
} from './backend-builders.js';
import { isProtocolError, ProtocolError, ProtocolErrorCode } from './errors.js';
import { Framer, FramerMode, MAX_STARTUP_PACKET_BYTES, STARTUP_FRAME_TYPE } from './framer.js';
import {
  buildBind,
  buildCancelRequest,
  buildDescribe,
  buildExecute,
  buildParse,
  buildQuery,
  buildSSLRequest,
  buildStartupMessage,
  buildSync,
  buildTerminate,
} from './frontend-builders.js';
import { FRONTEND_CODES, TxStatus } from './message-codes.js';
import { cut, frameChunks } from './testing.js';

/** A client's first flight: StartupMessage, then a pipelined extended-protocol query, then Terminate. */
const clientMessages = [
  buildStartupMessage({ user: 'alice', database: 'app', application_name: 'ü-test' }),
  buildQuery('SELECT 1; SELECT 2'),
  buildParse('s1', 'SELECT $1::int', [23]),
  buildBind({ statement: 's1', params: ['42', null] }),
  buildDescribe('P', ''),
  buildExecute('', 0),
  buildSync(),
  buildTerminate(),
];
const clientStream = Buffer.concat(clientMessages);
/** Expected frames, derived from the message list itself (not from the framer). */
const clientExpected = clientMessages.map((m, i) => ({
  type: i === 0 ? STARTUP_FRAME_TYPE : (m[0] as number),
  raw: m,
}));

const serverMessages = [
  buildParseComplete(),
  buildBindComplete(),
  buildRowDescription([{ name: 'n', typeOid: 23 }]),
  buildDataRow(['42']),
  buildDataRow([null]),
  buildCommandComplete('SELECT 2'),
  buildReadyForQuery(TxStatus.Idle),
];
const serverStream = Buffer.concat(serverMessages);
const serverExpected = serverMessages.map((m) => ({ type: m[0] as number, raw: m }));

function expectError(err: unknown, code: string): void {
  assert.ok(isProtocolError(err), `expected a ProtocolError, got ${String(err)}`);
  assert.equal(err.code, code);
}

describe('Framer', () => {
  it('returns every message of one chunk as a view into that chunk', () => {
    const framer = new Framer({ mode: FramerMode.Startup });
    framer.push(clientStream);
    const frames = [];
    for (let f = framer.next(); f; f = framer.next()) frames.push(f);
    assert.equal(frames.length, clientMessages.length);
    frames.forEach((f, i) => {
      assert.equal(f.source, clientStream, `frame ${i} is a view, not a copy`);
      assert.deepEqual(f.raw, clientMessages[i]);
      assert.equal(f.length, f.raw.length - f.headerSize + 4);
      assert.deepEqual(f.payload, (clientMessages[i] as Buffer).subarray(f.headerSize));
    });
    assert.equal(frames[0]?.type, STARTUP_FRAME_TYPE);
    assert.equal(framer.mode, FramerMode.Regular, 'switched to typed messages after StartupMessage');
    assert.equal(framer.bufferedBytes, 0);
    assert.equal(framer.retainedBytes, 0, 'drained chunk is released');
  });

  it('gives the same frames for every single split point (client stream, startup mode)', () => {
    for (let i = 0; i <= clientStream.length; i++) {
      const out = frameChunks(cut(clientStream, [i]), { mode: FramerMode.Startup });
      assert.equal(out.error, null, `split at ${i}`);
      assert.deepEqual(out.frames, clientExpected, `split at ${i}`);
    }
  });

  it('gives the same frames for every pair of split points (server stream)', () => {
    for (let i = 0; i <= serverStream.length; i++) {
      for (let j = i; j <= serverStream.length; j++) {
        const out = frameChunks(cut(serverStream, [i, j]));
        assert.deepEqual(out.frames, serverExpected, `split at ${i},${j}`);
      }
    }
  });

  it('gives the same frames fed one byte at a time', () => {
    const bytes = [...clientStream].map((b) => Buffer.from([b]));
    assert.deepEqual(frameChunks(bytes, { mode: FramerMode.Startup }).frames, clientExpected);
  });

  it('reassembles a large message spanning many chunks with memory tracking the bytes received', () => {
    const body = Buffer.alloc(300_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const msg = Buffer.concat([Buffer.from([0x64, 0, 0, 0, 0]), body]);
    msg.writeInt32BE(body.length + 4, 1);
    const framer = new Framer();
    let received = 0;
    let got: Buffer | undefined;
    for (let off = 0; off < msg.length; off += 1000) {
      const chunk = msg.subarray(off, off + 1000);
      received += chunk.length;
      framer.push(chunk);
      const f = framer.next();
      if (f) got = Buffer.from(f.raw);
      else
        assert.ok(
          framer.retainedBytes <= Math.max(64 * 1024, 2 * received),
          `retained ${framer.retainedBytes} after ${received}`,
        );
      assert.equal(framer.next(), undefined);
    }
    assert.deepEqual(got, msg);
  });

  it('reassembles when a later chunk is far larger than what was buffered so far', () => {
    const body = Buffer.alloc(1_000_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 13) & 0xff;
    const msg = Buffer.concat([Buffer.from([0x64, 0, 0, 0, 0]), body, buildSync()]);
    msg.writeInt32BE(body.length + 4, 1);
    const out = frameChunks([msg.subarray(0, 3), msg.subarray(3, 10), msg.subarray(10)]);
    assert.equal(out.error, null);
    assert.deepEqual(
      out.frames.map((f) => f.raw),
      [msg.subarray(0, body.length + 5), buildSync()],
    );
  });

  it('does not allocate a huge announced length before its bytes arrive', () => {
    const framer = new Framer();
    const head = Buffer.from([0x64, 0x3f, 0xff, 0xff, 0xff, 1, 2, 3]);
    framer.push(head);
    assert.equal(framer.next(), undefined);
    assert.equal(framer.bufferedBytes, head.length);
    assert.ok(framer.retainedBytes <= 64 * 1024, `retained ${framer.retainedBytes}`);
  });

  for (const [name, word, code] of [
    ['length 3', 3, ProtocolErrorCode.BadLength],
    ['length 0', 0, ProtocolErrorCode.BadLength],
    ['negative length', -1, ProtocolErrorCode.BadLength],
    ['length over the limit', 1_000_001, ProtocolErrorCode.TooLarge],
  ] as const) {
    it(`fails with ${code} on ${name} at every split point, after the good frames before it`, () => {
      const bad = Buffer.from([0x51, 0, 0, 0, 0, 0x41, 0x42]);
      bad.writeInt32BE(word, 1);
      const stream = Buffer.concat([serverStream, bad]);
      for (let i = 0; i <= stream.length; i++) {
        const out = frameChunks(cut(stream, [i]), { maxMessageBytes: 1_000_000 });
        assert.deepEqual(out.frames, serverExpected, `split at ${i}`);
        expectError(out.error, code);
      }
    });
  }

  it('stays failed: next() rethrows the same error and push() is ignored', () => {
    const framer = new Framer();
    framer.push(Buffer.from([0x51, 0, 0, 0, 1]));
    let first: unknown;
    assert.throws(
      () => framer.next(),
      (e) => ((first = e), isProtocolError(e)),
    );
    framer.push(buildSync());
    assert.throws(
      () => framer.next(),
      (e) => e === first,
    );
    assert.equal(framer.error, first);
    assert.equal(framer.retainedBytes, 0);
  });

  it('rejects start-up packets that are too short or too long', () => {
    const short = Buffer.from([0, 0, 0, 7, 0, 3, 0]);
    expectError(frameChunks([short], { mode: FramerMode.Startup }).error, ProtocolErrorCode.BadStartup);
    const long = Buffer.from([0, 0, 0, 0, 0, 3, 0, 0]);
    long.writeInt32BE(MAX_STARTUP_PACKET_BYTES + 1, 0);
    expectError(frameChunks([long], { mode: FramerMode.Startup }).error, ProtocolErrorCode.TooLarge);
    long.writeInt32BE(MAX_STARTUP_PACKET_BYTES, 0);
    assert.equal(frameChunks([long], { mode: FramerMode.Startup }).error, null, 'the limit itself is allowed');
  });

  it('rejects a disallowed type byte as soon as the header is seen', () => {
    const framer = new Framer({ allowedTypes: FRONTEND_CODES });
    framer.push(Buffer.from([0x5a, 0x10, 0, 0, 0])); // 'Z' is a backend message; body never sent
    assert.throws(
      () => framer.next(),
      (e) => isProtocolError(e) && e.code === ProtocolErrorCode.UnknownMessage,
    );
  });

  it('stays in start-up mode after SSLRequest and reports bytes sent ahead of the TLS handshake', () => {
    const framer = new Framer({ mode: FramerMode.Startup });
    framer.push(Buffer.concat([buildSSLRequest(), Buffer.from('early')]));
    const f = framer.next();
    assert.equal(f?.raw.length, 8);
    assert.equal(framer.mode, FramerMode.Startup);
    assert.equal(framer.bufferedBytes, 5, 'the proxy must refuse: data before the handshake');
  });

  it('frames SSLRequest, then StartupMessage, then typed messages in one stream', () => {
    const stream = Buffer.concat([buildSSLRequest(), clientStream]);
    const expected = [{ type: STARTUP_FRAME_TYPE, raw: buildSSLRequest() }, ...clientExpected];
    for (let i = 0; i <= stream.length; i += 3) {
      assert.deepEqual(frameChunks(cut(stream, [i]), { mode: FramerMode.Startup }).frames, expected);
    }
  });

  it('stays in start-up mode after CancelRequest', () => {
    const framer = new Framer({ mode: FramerMode.Startup });
    framer.push(buildCancelRequest(7, 9));
    assert.equal(framer.next()?.length, 16);
    assert.equal(framer.mode, FramerMode.Startup);
  });

  it('applies a raised limit to later messages', () => {
    const framer = new Framer({ maxMessageBytes: 10 });
    const big = buildQuery('SELECT 12345678');
    framer.maxMessageBytes = 1000;
    framer.push(big);
    assert.deepEqual(framer.next()?.raw, big);
  });

  it('refuses a push before the previous chunk is drained (a caller bug, not a protocol error)', () => {
    const framer = new Framer();
    framer.push(serverStream);
    framer.next();
    assert.throws(
      () => framer.push(serverStream),
      (e) => e instanceof Error && !(e instanceof ProtocolError),
    );
  });
});
