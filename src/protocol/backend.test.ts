import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Parser } from 'pg-protocol/dist/parser.js';
import {
  parseAuthentication,
  parseBackendKeyData,
  parseBackendMessage,
  parseCommandComplete,
  parseCommandTag,
  parseDataRow,
  parseNegotiateProtocolVersion,
  parseNoticeFields,
  parseParameterStatus,
  parseReadyForQuery,
  parseRowDescription,
} from './backend.js';
import {
  buildAuthenticationCleartextPassword,
  buildAuthenticationMD5Password,
  buildAuthenticationOk,
  buildAuthenticationSASL,
  buildAuthenticationSASLContinue,
  buildAuthenticationSASLFinal,
  buildBackendKeyData,
  buildBindComplete,
  buildCloseComplete,
  buildCommandComplete,
  buildDataRow,
  buildEmptyQueryResponse,
  buildErrorResponse,
  buildNegotiateProtocolVersion,
  buildNoData,
  buildNoticeResponse,
  buildParameterStatus,
  buildParseComplete,
  buildReadyForQuery,
  buildRowDescription,
  errorResponseFor,
} from './backend-builders.js';
import { isProtocolError, ProtocolError, ProtocolErrorCode } from './errors.js';
import { TxStatus, TypeOid } from './message-codes.js';

const typed = (m: Buffer): Buffer => m.subarray(5);
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e) => isProtocolError(e) && e.code === code);
}

/** node-postgres' own parser, as an independent reading of what we build. */
function viaNodePostgres(...messages: Buffer[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  new Parser().parse(Buffer.concat(messages), (m) => out.push(m as unknown as Record<string, unknown>));
  return out;
}

describe('backend parsers', () => {
  it('parses every authentication request a pooler meets', () => {
    assert.deepEqual(parseAuthentication(typed(buildAuthenticationOk())), { kind: 'ok', code: 0 });
    assert.deepEqual(parseAuthentication(typed(buildAuthenticationCleartextPassword())), {
      kind: 'cleartext',
      code: 3,
    });
    const md5 = buildAuthenticationMD5Password(hex('01020304'));
    const parsed = parseAuthentication(typed(md5));
    md5.fill(0); // the salt is a copy
    assert.deepEqual(parsed, { kind: 'md5', code: 5, salt: hex('01020304') });
    assert.deepEqual(parseAuthentication(typed(buildAuthenticationSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']))), {
      kind: 'sasl',
      code: 10,
      mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'],
    });
    assert.deepEqual(parseAuthentication(typed(buildAuthenticationSASLContinue('r=a,s=b,i=1'))), {
      kind: 'sasl-continue',
      code: 11,
      data: Buffer.from('r=a,s=b,i=1'),
    });
    assert.deepEqual(parseAuthentication(typed(buildAuthenticationSASLFinal('v=x'))), {
      kind: 'sasl-final',
      code: 12,
      data: Buffer.from('v=x'),
    });
    assert.deepEqual(parseAuthentication(hex('00000007')), { kind: 'unsupported', code: 7, data: Buffer.alloc(0) });
    throwsCode(() => parseAuthentication(hex('00000005 010203')), ProtocolErrorCode.TruncatedField);
    throwsCode(() => parseAuthentication(hex('00000000 00')), ProtocolErrorCode.TrailingBytes);
    throwsCode(() => parseAuthentication(hex('0000000a 5800')), ProtocolErrorCode.TruncatedField); // list unterminated
  });

  it('parses ParameterStatus, BackendKeyData (3.0 and 3.2) and ReadyForQuery', () => {
    assert.deepEqual(parseParameterStatus(typed(buildParameterStatus('TimeZone', 'Europe/Paris'))), {
      name: 'TimeZone',
      value: 'Europe/Paris',
    });
    throwsCode(() => parseParameterStatus(Buffer.from('TimeZone\0UTC')), ProtocolErrorCode.TruncatedField);
    assert.deepEqual(parseBackendKeyData(typed(buildBackendKeyData(42, -5))), { pid: 42, secret: hex('fffffffb') });
    const long = Buffer.alloc(32, 0xab);
    assert.deepEqual(parseBackendKeyData(typed(buildBackendKeyData(42, long))), { pid: 42, secret: long });
    throwsCode(() => parseBackendKeyData(hex('0000002a 0102')), ProtocolErrorCode.BadField);
    for (const s of [TxStatus.Idle, TxStatus.InTransaction, TxStatus.Failed]) {
      assert.equal(parseReadyForQuery(typed(buildReadyForQuery(s))), s);
    }
    throwsCode(() => parseReadyForQuery(Buffer.from('X')), ProtocolErrorCode.BadField);
    throwsCode(() => parseReadyForQuery(Buffer.from('II')), ProtocolErrorCode.TrailingBytes);
    throwsCode(() => parseReadyForQuery(Buffer.alloc(0)), ProtocolErrorCode.TruncatedField);
  });

  it('parses ErrorResponse fields, keeping unknown ones and preferring the raw severity', () => {
    const e = buildErrorResponse({
      severity: 'ERROR',
      sqlstate: '42P01',
      message: 'no such table',
      detail: 'd',
      hint: 'h',
    });
    const f = parseNoticeFields(typed(e));
    assert.deepEqual(
      [f.severity, f.sqlstate, f.message, f.detail, f.hint],
      ['ERROR', '42P01', 'no such table', 'd', 'h'],
    );
    assert.deepEqual([...f.fields.keys()], ['S', 'V', 'C', 'M', 'D', 'H']);
    const localized = parseNoticeFields(Buffer.from('SFEHLER\0VERROR\0C22012\0Mx\0Zfuture\0\0'));
    assert.equal(localized.severity, 'ERROR');
    assert.equal(localized.fields.get('Z'), 'future');
    assert.equal(localized.detail, undefined);
    throwsCode(() => parseNoticeFields(Buffer.from('SERROR\0')), ProtocolErrorCode.TruncatedField);
    throwsCode(() => parseNoticeFields(Buffer.from('SERROR\0\0x')), ProtocolErrorCode.TrailingBytes);
  });

  it('parses command tags', () => {
    assert.equal(parseCommandComplete(typed(buildCommandComplete('INSERT 0 5'))), 'INSERT 0 5');
    assert.deepEqual(parseCommandTag('INSERT 0 5'), { command: 'INSERT', rows: 5 });
    assert.deepEqual(parseCommandTag('SELECT 3'), { command: 'SELECT', rows: 3 });
    assert.deepEqual(parseCommandTag('CREATE TABLE'), { command: 'CREATE TABLE', rows: null });
    assert.deepEqual(parseCommandTag('SET'), { command: 'SET', rows: null });
  });

  it('round-trips RowDescription and DataRow as the admin console builds them', () => {
    const rd = buildRowDescription([
      { name: 'database', typeOid: TypeOid.text },
      { name: 'cl_active', typeOid: TypeOid.int4 },
      { name: 'total_xact_count', typeOid: TypeOid.int8 },
    ]);
    assert.deepEqual(
      parseRowDescription(typed(rd)).map((c) => [c.name, c.typeOid, c.typeSize, c.typeModifier, c.format]),
      [
        ['database', 25, -1, -1, 0],
        ['cl_active', 23, 4, -1, 0],
        ['total_xact_count', 20, 8, -1, 0],
      ],
    );
    assert.deepEqual(parseDataRow(typed(buildDataRow(['app', 3, 12345678901234567890n, null]))), [
      Buffer.from('app'),
      Buffer.from('3'),
      Buffer.from('12345678901234567890'),
      null,
    ]);
    throwsCode(() => parseDataRow(hex('0002 ffffffff')), ProtocolErrorCode.TruncatedField);
    throwsCode(() => parseDataRow(hex('0001 fffffffe')), ProtocolErrorCode.BadField);
  });

  it('parses NegotiateProtocolVersion', () => {
    assert.deepEqual(parseNegotiateProtocolVersion(typed(buildNegotiateProtocolVersion(0, ['_pq_.x']))), {
      minor: 0,
      unsupportedOptions: ['_pq_.x'],
    });
    throwsCode(() => parseNegotiateProtocolVersion(hex('00000000 ffffffff')), ProtocolErrorCode.BadField);
  });

  it('dispatches on the type byte, checks empty messages are empty, refuses unknown types', () => {
    const cases: [Buffer, string][] = [
      [buildParseComplete(), 'ParseComplete'],
      [buildBindComplete(), 'BindComplete'],
      [buildCloseComplete(), 'CloseComplete'],
      [buildNoData(), 'NoData'],
      [buildEmptyQueryResponse(), 'EmptyQueryResponse'],
    ];
    for (const [m, type] of cases)
      assert.deepEqual(parseBackendMessage({ type: m[0] as number, payload: typed(m) }), { type });
    throwsCode(() => parseBackendMessage({ type: 0x31, payload: Buffer.from([0]) }), ProtocolErrorCode.TrailingBytes);
    throwsCode(() => parseBackendMessage({ type: 0x70, payload: Buffer.alloc(0) }), ProtocolErrorCode.UnknownMessage);
    const z = parseBackendMessage({ type: 0x5a, payload: Buffer.from('T') });
    assert.deepEqual(z, { type: 'ReadyForQuery', status: TxStatus.InTransaction });
  });
});

describe('backend builders', () => {
  it('refuse a bad SQLSTATE, an embedded NUL and a salt of the wrong size', () => {
    throwsCode(
      () => buildErrorResponse({ severity: 'ERROR', sqlstate: '8P01', message: 'x' }),
      ProtocolErrorCode.BadField,
    );
    throwsCode(
      () => buildErrorResponse({ severity: 'ERROR', sqlstate: '08P01', message: 'a\0b' }),
      ProtocolErrorCode.BadField,
    );
    throwsCode(() => buildAuthenticationMD5Password(Buffer.alloc(3)), ProtocolErrorCode.BadField);
  });

  it('turn a ProtocolError into a FATAL ErrorResponse with its SQLSTATE', () => {
    const err = new ProtocolError(ProtocolErrorCode.TooLarge, 'message too large');
    const f = parseNoticeFields(typed(errorResponseFor(err)));
    assert.deepEqual([f.severity, f.sqlstate, f.message], ['FATAL', '54000', 'message too large']);
  });

  it('are read by node-postgres as intended', () => {
    const msgs = viaNodePostgres(
      buildAuthenticationOk(),
      buildAuthenticationCleartextPassword(),
      buildAuthenticationMD5Password(hex('0a0b0c0d')),
      buildAuthenticationSASL(['SCRAM-SHA-256']),
      buildAuthenticationSASLContinue('r=abc,s=c2FsdA==,i=4096'),
      buildAuthenticationSASLFinal('v=sig'),
      buildParameterStatus('server_version', '15.4'),
      buildBackendKeyData(4242, 0x01020304),
      buildRowDescription([{ name: 'n', typeOid: TypeOid.int8 }, { name: 't' }]),
      buildDataRow([7, null]),
      buildCommandComplete('SHOW'),
      buildEmptyQueryResponse(),
      buildParseComplete(),
      buildBindComplete(),
      buildCloseComplete(),
      buildNoData(),
      buildNoticeResponse({ severity: 'WARNING', sqlstate: '01000', message: 'careful' }),
      buildErrorResponse({ severity: 'FATAL', sqlstate: '08P01', message: 'bad', detail: 'why', hint: 'fix' }),
      buildReadyForQuery(TxStatus.Failed),
    );
    const names = msgs.map((m) => m.name);
    assert.deepEqual(names, [
      'authenticationOk',
      'authenticationCleartextPassword',
      'authenticationMD5Password',
      'authenticationSASL',
      'authenticationSASLContinue',
      'authenticationSASLFinal',
      'parameterStatus',
      'backendKeyData',
      'rowDescription',
      'dataRow',
      'commandComplete',
      'emptyQuery',
      'parseComplete',
      'bindComplete',
      'closeComplete',
      'noData',
      'notice',
      'error',
      'readyForQuery',
    ]);
    const [, , md5, sasl, cont, fin, ps, kd, rd, dr, cc, , , , , , notice, error, rfq] = msgs as Record<
      string,
      unknown
    >[];
    assert.deepEqual(md5?.salt, hex('0a0b0c0d'));
    assert.deepEqual(sasl?.mechanisms, ['SCRAM-SHA-256']);
    assert.equal(cont?.data, 'r=abc,s=c2FsdA==,i=4096');
    assert.equal(fin?.data, 'v=sig');
    assert.deepEqual([ps?.parameterName, ps?.parameterValue], ['server_version', '15.4']);
    assert.deepEqual([kd?.processID, kd?.secretKey], [4242, 0x01020304]);
    const fields = rd?.fields as { name: string; dataTypeID: number; dataTypeSize: number; format: string }[];
    assert.deepEqual(
      fields.map((c) => [c.name, c.dataTypeID, c.dataTypeSize, c.format]),
      [
        ['n', 20, 8, 'text'],
        ['t', 25, -1, 'text'],
      ],
    );
    assert.deepEqual(dr?.fields, ['7', null]);
    assert.equal(cc?.text, 'SHOW');
    assert.deepEqual([notice?.severity, notice?.code, notice?.message], ['WARNING', '01000', 'careful']);
    assert.deepEqual(
      [error?.severity, error?.code, error?.message, error?.detail, error?.hint],
      ['FATAL', '08P01', 'bad', 'why', 'fix'],
    );
    assert.equal(rfq?.status, 'E');
  });
});
