/**
 * Deterministic fuzzing: ~20k mutated or random inputs through every parser, the framer, the rewrites and the
 * SCRAM state machines. Each must return a value or throw a ProtocolError — never a RangeError/TypeError — and
 * the framer must stay lossless and bounded. The seed is fixed, so a failure reproduces; the failing case's
 * bytes are in the assertion message.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAuthentication, parseBackendMessage, parseNoticeFields } from './backend.js';
import {
  buildAuthenticationSASL,
  buildBackendKeyData,
  buildDataRow,
  buildErrorResponse,
  buildParameterStatus,
  buildReadyForQuery,
  buildRowDescription,
} from './backend-builders.js';
import { ProtocolError } from './errors.js';
import { FramerMode, streamTable } from './framer.js';
import {
  parseBind,
  parseBindParameters,
  parseFrontendMessage,
  parsePasswordMessage,
  parseSASLInitialResponse,
  parseStartup,
} from './frontend.js';
import {
  buildBind,
  buildCancelRequest,
  buildClose,
  buildDescribe,
  buildExecute,
  buildParse,
  buildQuery,
  buildSASLInitialResponse,
  buildSSLRequest,
  buildStartupMessage,
  buildSync,
  rewriteBindStatement,
  rewriteCloseName,
  rewriteDescribeName,
  rewriteParseName,
} from './frontend-builders.js';
import { ScramClient, ScramServer } from './auth/scram.js';
import { TxStatus } from './message-codes.js';
import { frameChunks, prng, randInt, streamChunks } from './testing.js';

const typedCorpus = [
  buildQuery('SELECT 1'),
  buildParse('s', 'SELECT $1', [23, 25]),
  buildBind({
    portal: 'p',
    statement: 's',
    paramFormats: [1],
    params: [Buffer.from([1, 2]), null, 'x'],
    resultFormats: [0, 1],
  }),
  buildDescribe('S', 's'),
  buildClose('P', 'p'),
  buildExecute('p', 10),
  buildSync(),
  buildSASLInitialResponse('SCRAM-SHA-256', 'n,,n=,r=abc'),
  buildAuthenticationSASL(['SCRAM-SHA-256']),
  buildParameterStatus('DateStyle', 'ISO, MDY'),
  buildBackendKeyData(1, 2),
  buildRowDescription([{ name: 'a' }, { name: 'b', typeOid: 20 }]),
  buildDataRow(['x', null, 3]),
  buildErrorResponse({ severity: 'ERROR', sqlstate: '42601', message: 'syntax', hint: 'h' }),
  buildReadyForQuery(TxStatus.Idle),
];
const startupCorpus = [buildStartupMessage({ user: 'u', database: 'd' }), buildSSLRequest(), buildCancelRequest(5, 6)];
const LIMIT = 100_000;

function mutate(rand: () => number, base: Buffer): Buffer {
  const b = Buffer.from(base);
  switch (randInt(rand, 6)) {
    case 0: // flip a few bytes
      for (let i = 0, n = 1 + randInt(rand, 4); i < n && b.length > 0; i++)
        b[randInt(rand, b.length)] = randInt(rand, 256);
      return b;
    case 1: // truncate
      return b.subarray(0, randInt(rand, b.length + 1));
    case 2: // append garbage
      return Buffer.concat([b, randomBytes(rand, randInt(rand, 16))]);
    case 3: {
      // hostile length word (typed messages have it at 1, start-up packets at 0)
      const at = randInt(rand, 2);
      const words = [
        -1,
        -2147483648,
        0,
        3,
        4,
        7,
        0x7fffffff,
        LIMIT + 1,
        randInt(rand, 0x7fffffff),
        b.length + randInt(rand, 9) - 4,
      ];
      if (b.length >= at + 4) b.writeInt32BE(words[randInt(rand, words.length)] as number, at);
      return b;
    }
    case 4: // byte-level insertion of NULs / removal of NULs
      return Buffer.from([...b].map((x) => (rand() < 0.1 ? (x === 0 ? 0x41 : 0) : x)));
    default:
      return randomBytes(rand, randInt(rand, 40));
  }
}

function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = randInt(rand, 256);
  return b;
}

/** Runs `fn`; anything thrown other than a ProtocolError fails the test with the input that caused it. */
function survives(what: string, input: Buffer | string, fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return;
    const shown = typeof input === 'string' ? JSON.stringify(input) : input.toString('hex');
    assert.fail(`${what} threw ${String(err)} for ${shown}`);
  }
}

function randomCuts(rand: () => number, length: number): number[] {
  const cuts: number[] = [];
  for (let i = 0, n = randInt(rand, 4); i < n; i++) cuts.push(randInt(rand, length + 1));
  return cuts.sort((a, b) => a - b);
}

describe('fuzz (seeded)', () => {
  it('parsers return a value or a ProtocolError for 12k mutated messages', () => {
    const rand = prng(0x5eed);
    for (let i = 0; i < 12_000; i++) {
      const startup = rand() < 0.2;
      const corpus = startup ? startupCorpus : typedCorpus;
      const raw = mutate(rand, corpus[randInt(rand, corpus.length)] as Buffer);
      if (startup) {
        survives('parseStartup', raw, () => parseStartup(raw.subarray(4)));
        continue;
      }
      const type = raw[0] ?? 0;
      const payload = raw.subarray(5);
      survives('parseFrontendMessage', raw, () => parseFrontendMessage({ type, payload }));
      survives('parseBackendMessage', raw, () => parseBackendMessage({ type, payload }));
      survives('parseBindParameters', raw, () => parseBindParameters(payload, parseBind(payload).paramsOffset));
      survives('parseSASLInitialResponse', raw, () => parseSASLInitialResponse(payload));
      survives('parsePasswordMessage', raw, () => parsePasswordMessage(payload));
      survives('parseAuthentication', raw, () => parseAuthentication(payload));
      survives('parseNoticeFields', raw, () => parseNoticeFields(payload));
      for (const rewrite of [rewriteBindStatement, rewriteParseName, rewriteDescribeName, rewriteCloseName]) {
        survives(rewrite.name, raw, () => rewrite(raw, 'PGKEEL_1'));
      }
    }
  });

  it('the framer is lossless, bounded and fails only with ProtocolError over 6k mutated streams', () => {
    const rand = prng(0xf4a3e);
    for (let i = 0; i < 6_000; i++) {
      const startup = rand() < 0.3;
      const parts: Buffer[] = startup
        ? [mutate(rand, startupCorpus[randInt(rand, startupCorpus.length)] as Buffer)]
        : [];
      for (let j = 0, n = 1 + randInt(rand, 4); j < n; j++) {
        const m = typedCorpus[randInt(rand, typedCorpus.length)] as Buffer;
        parts.push(rand() < 0.3 ? mutate(rand, m) : m);
      }
      const stream = Buffer.concat(parts);
      const chunks = randomCuts(rand, stream.length);
      const pieces: Buffer[] = [];
      let prev = 0;
      for (const c of [...chunks, stream.length]) {
        pieces.push(stream.subarray(prev, c));
        prev = c;
      }
      let out: ReturnType<typeof frameChunks> | undefined;
      survives('Framer', stream, () => {
        out = frameChunks(pieces, { mode: startup ? FramerMode.Startup : FramerMode.Regular, maxMessageBytes: LIMIT });
      });
      if (!out) continue;
      const framed = Buffer.concat(out.frames.map((f) => f.raw));
      assert.deepEqual(
        framed,
        stream.subarray(0, framed.length),
        `frames are the stream's bytes: ${stream.toString('hex')}`,
      );
      const maxChunk = Math.max(...pieces.map((p) => p.length));
      assert.ok(out.maxRetained <= maxChunk + LIMIT + 5, `retained ${out.maxRetained} for ${stream.toString('hex')}`);
    }
  });

  it('the streaming framer is lossless and fails only with ProtocolError over 3k mutated streams, holding some messages', () => {
    const rand = prng(0x57ea4);
    const every = streamTable(Array.from({ length: 256 }, (_, t) => t));
    for (let i = 0; i < 3_000; i++) {
      const parts: Buffer[] = [];
      for (let j = 0, n = 1 + randInt(rand, 4); j < n; j++) {
        const m = typedCorpus[randInt(rand, typedCorpus.length)] as Buffer;
        parts.push(rand() < 0.3 ? mutate(rand, m) : m);
        if (rand() < 0.3) parts.push(buildQuery('x'.repeat(200 + randInt(rand, 2000)))); // long enough to stream
      }
      const stream = Buffer.concat(parts);
      const pieces: Buffer[] = [];
      let prev = 0;
      for (const c of [...randomCuts(rand, stream.length), stream.length]) {
        pieces.push(stream.subarray(prev, c));
        prev = c;
      }
      let out: ReturnType<typeof streamChunks> | undefined;
      const hold = rand() < 0.5;
      survives('Framer (streaming)', stream, () => {
        out = streamChunks(
          pieces,
          { maxMessageBytes: LIMIT, maxHeldBytes: LIMIT, streamAbove: 8, streamTypes: every },
          (p) => hold && (p.type & 1) === 1,
        );
      });
      if (!out) continue;
      const framed = Buffer.concat(out.messages.map((m) => m.raw));
      assert.deepEqual(
        framed,
        stream.subarray(0, framed.length),
        `messages are the stream's bytes: ${stream.toString('hex')}`,
      );
    }
  });

  it('SCRAM state machines return or throw ProtocolError for 2k random messages', () => {
    const rand = prng(0x5c7a);
    const verifier =
      'SCRAM-SHA-256$4096:D76gvGUVj9Z4DNiGoabOBg==$RukL0Xo3Ql/2F9FsD7mcQ3GATG2fD3PA71qY1JagGDs=:BhKUwyyivFm7Tq2jDJVXSVRbRDgTWyBilZKgg6DDuYU=';
    const seeds = [
      'n,,n=,r=CN',
      'c=biws,r=CNSN,p=' + Buffer.alloc(32).toString('base64'),
      'r=CNSN,s=c2FsdA==,i=2',
      'v=AAAA',
      'e=x',
    ];
    for (let i = 0; i < 2_000; i++) {
      const text = mutate(rand, Buffer.from(seeds[randInt(rand, seeds.length)] as string)).toString('latin1');
      const server = ScramServer.fromVerifier(verifier, () => 'SN');
      survives('ScramServer.serverFirst', text, () => server.serverFirst(text));
      const s2 = ScramServer.fromVerifier(verifier, () => 'SN');
      s2.serverFirst('n,,n=,r=CN');
      survives('ScramServer.verifyClientFinal', text, () => s2.verifyClientFinal(text));
      const client = new ScramClient('pw', () => 'CN', { maxIterations: 16 });
      client.clientFirst();
      survives('ScramClient.onServerFirst', text, () => client.onServerFirst(text));
      const c2 = new ScramClient('pw', () => 'CN', { maxIterations: 16 });
      c2.clientFirst();
      c2.onServerFirst('r=CNSN,s=c2FsdA==,i=2');
      survives('ScramClient.verifyServerFinal', text, () => c2.verifyServerFinal(text));
    }
  });
});
