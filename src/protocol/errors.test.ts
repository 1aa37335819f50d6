import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isProtocolError, ProtocolError, ProtocolErrorCode, protocolErrorCatalogue } from './errors.js';
import { AuthCode, BackendCode, FrontendCode, ProtocolCode, TxStatus } from './message-codes.js';

describe('error catalogue', () => {
  it('gives every code a SQLSTATE and a summary', () => {
    for (const code of Object.values(ProtocolErrorCode)) {
      const entry = protocolErrorCatalogue[code];
      assert.match(entry.sqlstate, /^[0-9A-Z]{5}$/, code);
      assert.ok(entry.summary.length > 10, code);
    }
    assert.deepEqual(Object.keys(protocolErrorCatalogue).sort(), Object.values(ProtocolErrorCode).sort());
  });

  it('maps the codes a client sees to the SQLSTATEs PostgreSQL uses', () => {
    const sqlstate = (code: ProtocolErrorCode): string => new ProtocolError(code, 'x').sqlstate;
    assert.equal(sqlstate(ProtocolErrorCode.BadLength), '08P01');
    assert.equal(sqlstate(ProtocolErrorCode.TruncatedField), '08P01');
    assert.equal(sqlstate(ProtocolErrorCode.UnknownMessage), '08P01');
    assert.equal(sqlstate(ProtocolErrorCode.TooLarge), '54000');
    assert.equal(sqlstate(ProtocolErrorCode.UnsupportedVersion), '0A000');
    assert.equal(sqlstate(ProtocolErrorCode.AuthFailed), '28P01');
  });

  it('carries code, message and context, and is recognisable', () => {
    const e = new ProtocolError(ProtocolErrorCode.TooLarge, 'too big', { length: 9, limit: 8 });
    assert.ok(isProtocolError(e) && e instanceof Error);
    assert.deepEqual(
      [e.name, e.code, e.message, e.context],
      ['ProtocolError', 'PROTOCOL_TOO_LARGE', 'too big', { length: 9, limit: 8 }],
    );
    assert.ok(!isProtocolError(new Error('x')));
  });
});

describe('message codes', () => {
  // The letters as printed in protocol-message-formats.html, spelled independently of message-codes.ts.
  const letter = (c: string): number => c.charCodeAt(0);
  it('frontend type bytes are the documented letters', () => {
    const expected: Record<keyof typeof FrontendCode, string> = {
      Bind: 'B',
      Close: 'C',
      CopyData: 'd',
      CopyDone: 'c',
      CopyFail: 'f',
      Describe: 'D',
      Execute: 'E',
      Flush: 'H',
      FunctionCall: 'F',
      Parse: 'P',
      PasswordMessage: 'p',
      Query: 'Q',
      Sync: 'S',
      Terminate: 'X',
    };
    for (const [name, l] of Object.entries(expected))
      assert.equal(FrontendCode[name as keyof typeof FrontendCode], letter(l), name);
  });

  it('backend type bytes are the documented letters', () => {
    const expected: Record<keyof typeof BackendCode, string> = {
      Authentication: 'R',
      BackendKeyData: 'K',
      BindComplete: '2',
      CloseComplete: '3',
      CommandComplete: 'C',
      CopyData: 'd',
      CopyDone: 'c',
      CopyInResponse: 'G',
      CopyOutResponse: 'H',
      CopyBothResponse: 'W',
      DataRow: 'D',
      EmptyQueryResponse: 'I',
      ErrorResponse: 'E',
      FunctionCallResponse: 'V',
      NegotiateProtocolVersion: 'v',
      NoData: 'n',
      NoticeResponse: 'N',
      NotificationResponse: 'A',
      ParameterDescription: 't',
      ParameterStatus: 'S',
      ParseComplete: '1',
      PortalSuspended: 's',
      ReadyForQuery: 'Z',
      RowDescription: 'T',
    };
    for (const [name, l] of Object.entries(expected))
      assert.equal(BackendCode[name as keyof typeof BackendCode], letter(l), name);
  });

  it('protocol, auth and status codes are the documented numbers', () => {
    assert.equal(ProtocolCode.V3_0, (3 << 16) | 0);
    assert.equal(ProtocolCode.SSLRequest, (1234 << 16) | 5679);
    assert.equal(ProtocolCode.CancelRequest, (1234 << 16) | 5678);
    assert.equal(ProtocolCode.GSSENCRequest, (1234 << 16) | 5680);
    assert.deepEqual(Object.values(AuthCode), [0, 3, 5, 10, 11, 12]);
    assert.deepEqual(Object.values(TxStatus), [letter('I'), letter('T'), letter('E')]);
  });
});
