import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serialize } from 'pg-protocol/dist/serializer.js';
import { isProtocolError, ProtocolErrorCode } from './errors.js';
import {
  parseBind,
  parseBindParameters,
  parseClose,
  parseDescribe,
  parseEmpty,
  parseExecute,
  parseFrontendMessage,
  parseParse,
  parsePasswordMessage,
  parseQuery,
  parseSASLInitialResponse,
  parseStartup,
} from './frontend.js';
import {
  buildBind,
  buildCancelRequest,
  buildClose,
  buildDescribe,
  buildExecute,
  buildFlush,
  buildParse,
  buildPasswordMessage,
  buildQuery,
  buildSASLInitialResponse,
  buildSASLResponse,
  buildSSLRequest,
  buildStartupMessage,
  buildSync,
  buildTerminate,
  rewriteBindStatement,
  rewriteBindStatementHead,
  rewriteCloseName,
  rewriteDescribeName,
  rewriteParseName,
} from './frontend-builders.js';
import { ProtocolCode } from './message-codes.js';

/** Payload of a typed message (after type byte and length word). */
const typed = (m: Buffer): Buffer => m.subarray(5);
/** Payload of a start-up packet (after the length word). */
const untyped = (m: Buffer): Buffer => m.subarray(4);
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e) => isProtocolError(e) && e.code === code);
}

describe('frontend parsers', () => {
  it('parses a StartupMessage into version and ordered parameters', () => {
    const m = buildStartupMessage([
      ['user', 'alice'],
      ['database', 'app'],
      ['__proto__', 'x'],
      ['options', '-c search_path=ü'],
    ]);
    const p = parseStartup(untyped(m));
    assert.equal(p.kind, 'startup');
    if (p.kind !== 'startup') return;
    assert.equal(p.protocol, 196608);
    assert.deepEqual([p.major, p.minor], [3, 0]);
    assert.deepEqual(
      [...p.params],
      [
        ['user', 'alice'],
        ['database', 'app'],
        ['__proto__', 'x'],
        ['options', '-c search_path=ü'],
      ],
    );
  });

  it('reports a newer minor version and refuses another major version with 0A000', () => {
    const p = parseStartup(untyped(buildStartupMessage({ user: 'u' }, ProtocolCode.V3_2)));
    assert.equal(p.kind === 'startup' && p.minor, 2);
    assert.throws(
      () => parseStartup(untyped(buildStartupMessage({ user: 'u' }, 2 << 16))),
      (e) => isProtocolError(e) && e.code === ProtocolErrorCode.UnsupportedVersion && e.sqlstate === '0A000',
    );
  });

  it('recognises SSLRequest, GSSENCRequest and CancelRequest (3.0 and 3.2 keys)', () => {
    assert.deepEqual(parseStartup(untyped(buildSSLRequest())), { kind: 'ssl' });
    assert.deepEqual(parseStartup(hex('04d2 1630')), { kind: 'gssenc' }); // 80877104
    assert.deepEqual(parseStartup(untyped(buildCancelRequest(1234, 0x01020304))), {
      kind: 'cancel',
      pid: 1234,
      secret: hex('01020304'),
    });
    const long = Buffer.alloc(32, 7);
    const c = parseStartup(untyped(buildCancelRequest(5, long)));
    assert.deepEqual(c, { kind: 'cancel', pid: 5, secret: long });
  });

  it('rejects malformed start-up packets', () => {
    throwsCode(() => parseStartup(hex('04d2162f 00')), ProtocolErrorCode.BadStartup); // SSLRequest + 1 byte
    throwsCode(() => parseStartup(hex('04d2162e 00000001 0102')), ProtocolErrorCode.BadStartup); // 2-byte key
    throwsCode(() => parseStartup(hex('00030000 75736572 00 61')), ProtocolErrorCode.TruncatedField); // "user\0a"
    throwsCode(() => parseStartup(hex('00030000 75736572 00 6100')), ProtocolErrorCode.BadStartup); // no terminator
    throwsCode(() => parseStartup(hex('00030000 00 00')), ProtocolErrorCode.TrailingBytes);
    throwsCode(() => parseStartup(hex('0003')), ProtocolErrorCode.TruncatedField);
  });

  it('parses Query and rejects a missing NUL or trailing bytes', () => {
    assert.equal(parseQuery(typed(buildQuery('SELECT ’1’'))), 'SELECT ’1’');
    throwsCode(() => parseQuery(Buffer.from('SELECT 1')), ProtocolErrorCode.TruncatedField);
    throwsCode(() => parseQuery(Buffer.from('SELECT 1\0x')), ProtocolErrorCode.TrailingBytes);
  });

  it('parses Parse with unsigned type OIDs; the definition is independent of the name', () => {
    const a = parseParse(typed(buildParse('a', 'SELECT $1, $2', [23, 4294967295])));
    assert.deepEqual([a.name, a.query, a.paramTypes], ['a', 'SELECT $1, $2', [23, 4294967295]]);
    const b = parseParse(typed(buildParse('other', 'SELECT $1, $2', [23, 4294967295])));
    assert.deepEqual(a.definition, b.definition);
    const c = parseParse(typed(buildParse('a', 'SELECT $1, $2', [23, 25])));
    assert.notDeepEqual(a.definition, c.definition);
    throwsCode(() => parseParse(hex('00 7800 0002 00000017')), ProtocolErrorCode.TruncatedField); // 2 types, 1 sent
  });

  it('parses Bind names with the statement offset, and its parameters on demand', () => {
    const m = buildBind({
      portal: 'p',
      statement: 'stmt',
      paramFormats: [0, 1],
      params: ['42', null],
      resultFormats: [1],
    });
    const b = parseBind(typed(m));
    assert.deepEqual([b.portal, b.statement, b.statementOffset, b.paramsOffset], ['p', 'stmt', 2, 7]);
    assert.equal(typed(m).toString('utf8', b.statementOffset, b.paramsOffset - 1), 'stmt');
    const params = parseBindParameters(typed(m), b.paramsOffset);
    assert.deepEqual(params, { formats: [0, 1], values: [Buffer.from('42'), null], resultFormats: [1] });
  });

  it('rejects Bind parameter sections that lie about their sizes', () => {
    const ok = typed(buildBind({ params: ['abc'] }));
    const names = parseBind(ok).paramsOffset;
    const longer = Buffer.from(ok);
    longer.writeInt32BE(4, names + 4); // value length 4, only 3 bytes follow before the result-format count
    throwsCode(() => parseBindParameters(longer, names), ProtocolErrorCode.TruncatedField);
    const negative = Buffer.from(ok);
    negative.writeInt32BE(-2, names + 4);
    throwsCode(() => parseBindParameters(negative, names), ProtocolErrorCode.BadField);
    const formats = typed(buildBind({ paramFormats: [0, 0], params: ['a', 'b', 'c'] }));
    throwsCode(() => parseBindParameters(formats, parseBind(formats).paramsOffset), ProtocolErrorCode.BadField);
  });

  it('parses Describe, Close and Execute and rejects an unknown target kind', () => {
    assert.deepEqual(parseDescribe(typed(buildDescribe('S', 'st'))), { kind: 'S', name: 'st' });
    assert.deepEqual(parseClose(typed(buildClose('P', ''))), { kind: 'P', name: '' });
    assert.deepEqual(parseExecute(typed(buildExecute('cur', 100))), { portal: 'cur', maxRows: 100 });
    throwsCode(() => parseDescribe(Buffer.from('Xst\0')), ProtocolErrorCode.BadField);
    throwsCode(() => parseExecute(Buffer.from('cur\0\0\0')), ProtocolErrorCode.TruncatedField);
  });

  it('requires Sync, Flush and Terminate to be empty', () => {
    for (const m of [buildSync(), buildFlush(), buildTerminate()]) {
      assert.equal(m.length, 5);
      parseEmpty(typed(m), 'x');
    }
    throwsCode(() => parseEmpty(Buffer.from([0]), 'Sync'), ProtocolErrorCode.TrailingBytes);
  });

  it('parses the three kinds of password message', () => {
    assert.equal(parsePasswordMessage(typed(buildPasswordMessage('s3cret'))), 's3cret');
    assert.deepEqual(parseSASLInitialResponse(typed(buildSASLInitialResponse('SCRAM-SHA-256', 'n,,n=,r=abc'))), {
      mechanism: 'SCRAM-SHA-256',
      data: Buffer.from('n,,n=,r=abc'),
    });
    assert.deepEqual(parseSASLInitialResponse(typed(buildSASLInitialResponse('X', null))), {
      mechanism: 'X',
      data: null,
    });
    throwsCode(() => parseSASLInitialResponse(hex('5800 00000005 6162')), ProtocolErrorCode.TruncatedField);
    throwsCode(() => parseSASLInitialResponse(hex('5800 fffffffe')), ProtocolErrorCode.BadField);
    assert.deepEqual(typed(buildSASLResponse('c=biws')), Buffer.from('c=biws'));
  });

  it('dispatches on the type byte and refuses unknown types', () => {
    const m = buildQuery('SELECT 1');
    assert.deepEqual(parseFrontendMessage({ type: m[0] as number, payload: typed(m) }), {
      type: 'Query',
      sql: 'SELECT 1',
    });
    assert.deepEqual(parseFrontendMessage({ type: 0x53, payload: Buffer.alloc(0) }), { type: 'Sync' });
    throwsCode(() => parseFrontendMessage({ type: 0x5a, payload: Buffer.alloc(0) }), ProtocolErrorCode.UnknownMessage);
  });
});

describe('frontend rewrites', () => {
  it('renames the statement of a Bind and keeps every other byte', () => {
    const m = buildBind({ portal: 'p', statement: 'client_s1', params: ['x', null], resultFormats: [1] });
    const out = rewriteBindStatement(m, 'PGKEEL_17');
    assert.deepEqual(out, buildBind({ portal: 'p', statement: 'PGKEEL_17', params: ['x', null], resultFormats: [1] }));
    assert.equal(out.readInt32BE(1), out.length - 1);
    assert.deepEqual(rewriteBindStatement(out, 'client_s1'), m);
  });

  it("renames the statement in the first piece of a streamed Bind, with the whole message's new length", () => {
    const m = buildBind({ portal: 'p', statement: 'client_s1', params: ['x'.repeat(5000)] });
    assert.throws(
      () => rewriteBindStatementHead(m.subarray(0, 16), 'x'),
      /no terminating NUL/,
      'both names must be in the head',
    );
    for (const cutAt of [17, 40, 1000]) {
      const head = rewriteBindStatementHead(m.subarray(0, cutAt), 'PGKEEL_17_longer');
      assert.deepEqual(
        Buffer.concat([head, m.subarray(cutAt)]),
        rewriteBindStatement(m, 'PGKEEL_17_longer'),
        `cut at ${cutAt}`,
      );
    }
  });

  it('renames Parse, Describe and Close the same way', () => {
    assert.deepEqual(
      rewriteParseName(buildParse('a', 'SELECT $1', [25]), 'bbbb'),
      buildParse('bbbb', 'SELECT $1', [25]),
    );
    assert.deepEqual(rewriteDescribeName(buildDescribe('S', 'a'), ''), buildDescribe('S', ''));
    assert.deepEqual(rewriteCloseName(buildClose('S', ''), 'zz'), buildClose('S', 'zz'));
  });

  it('refuses to rewrite the wrong message, a bad length, or a name with NUL', () => {
    throwsCode(() => rewriteBindStatement(buildQuery('x'), 'n'), ProtocolErrorCode.UnknownMessage);
    throwsCode(() => rewriteBindStatement(buildBind({}).subarray(0, 8), 'n'), ProtocolErrorCode.BadLength);
    throwsCode(() => rewriteBindStatement(buildBind({}), 'a\0b'), ProtocolErrorCode.BadField);
    throwsCode(
      () => rewriteParseName(Buffer.from([0x50, 0, 0, 0, 6, 0x61, 0x62]), 'n'),
      ProtocolErrorCode.TruncatedField,
    );
  });
});

describe('frontend builders match node-postgres byte for byte', () => {
  const same = (ours: Buffer, theirs: Buffer): void => assert.deepEqual(ours, Buffer.from(theirs));

  it('start-up, SSL, cancel and password messages', () => {
    same(
      buildStartupMessage({ user: 'bob', database: 'db', client_encoding: 'UTF8' }),
      serialize.startup({ user: 'bob', database: 'db' }),
    );
    same(buildSSLRequest(), serialize.requestSsl());
    same(buildCancelRequest(77, 12345), serialize.cancel(77, 12345));
    same(buildPasswordMessage('pw'), serialize.password('pw'));
    same(
      buildSASLInitialResponse('SCRAM-SHA-256', 'n,,n=*,r=xyz'),
      serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=*,r=xyz'),
    );
    same(buildSASLResponse('c=biws,r=x,p=y'), serialize.sendSCRAMClientFinalMessage('c=biws,r=x,p=y'));
  });

  it('query and extended-protocol messages', () => {
    same(buildQuery('SELECT 1'), serialize.query('SELECT 1'));
    same(buildParse('s', 'SELECT $1', [23]), serialize.parse({ name: 's', text: 'SELECT $1', types: [23] }));
    same(
      buildBind({
        portal: 'p',
        statement: 's',
        paramFormats: [0, 1, 0],
        params: ['1', Buffer.from([2]), null],
        resultFormats: [0],
      }),
      serialize.bind({ portal: 'p', statement: 's', values: ['1', Buffer.from([2]), null] }),
    );
    same(buildExecute('p', 5), serialize.execute({ portal: 'p', rows: 5 }));
    same(buildDescribe('S', 's'), serialize.describe({ type: 'S', name: 's' }));
    same(buildClose('P', 'p'), serialize.close({ type: 'P', name: 'p' }));
    same(buildSync(), serialize.sync());
    same(buildFlush(), serialize.flush());
    same(buildTerminate(), serialize.end());
  });
});
