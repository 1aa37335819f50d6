import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from '../lib/log.js';
import { ProtocolError, ProtocolErrorCode } from '../protocol/index.js';
import { ProxyError, ProxyErrorCode } from './errors.js';
import { classifyClientError, SecurityEventKind, SecurityLog } from './security-log.js';

function recorder(): { log: Logger; lines: { msg: string; fields: Record<string, unknown> }[] } {
  const lines: { msg: string; fields: Record<string, unknown> }[] = [];
  const log: Logger = {
    debug: () => {},
    info: () => {},
    error: () => {},
    warn: (msg, fields = {}) => void lines.push({ msg, fields }),
    child: () => log,
  };
  return { log, lines };
}

const event = (n: number) => ({
  client: `127.0.0.1:${1000 + n}`,
  user: 'alice',
  database: 'app',
  code: 'PROXY_AUTH_FAILED',
  message: 'password authentication failed for user "alice"',
});

describe('security log', () => {
  it('classifies failed logins and protocol violations; other errors are not security events', () => {
    assert.equal(classifyClientError(new ProxyError(ProxyErrorCode.AuthFailed, 'x')), SecurityEventKind.LoginFailed);
    assert.equal(
      classifyClientError(new ProxyError(ProxyErrorCode.AuthUnsupported, 'x')),
      SecurityEventKind.LoginFailed,
    );
    assert.equal(
      classifyClientError(new ProtocolError(ProtocolErrorCode.SaslMalformed, 'x')),
      SecurityEventKind.LoginFailed,
    );
    assert.equal(
      classifyClientError(new ProtocolError(ProtocolErrorCode.TooLarge, 'x')),
      SecurityEventKind.ProtocolViolation,
    );
    assert.equal(
      classifyClientError(new ProtocolError(ProtocolErrorCode.BadStartup, 'x')),
      SecurityEventKind.ProtocolViolation,
    );
    assert.equal(
      classifyClientError(new ProxyError(ProxyErrorCode.StartupParameter, 'x')),
      SecurityEventKind.ProtocolViolation,
    );
    assert.equal(classifyClientError(new ProxyError(ProxyErrorCode.Shutdown, 'x')), null);
    assert.equal(classifyClientError(new ProxyError(ProxyErrorCode.ServerLost, 'x')), null);
  });

  it('logs the client address, user and database, and the error code', () => {
    const { log, lines } = recorder();
    new SecurityLog(log).report(SecurityEventKind.LoginFailed, event(1), 0);
    assert.deepEqual(lines, [
      {
        msg: 'client login failed',
        fields: {
          event: 'login_failed',
          client: '127.0.0.1:1001',
          code: 'PROXY_AUTH_FAILED',
          err: 'password authentication failed for user "alice"',
          user: 'alice',
          database: 'app',
        },
      },
    ]);
  });

  it('writes at most `burst` lines per kind and interval, then one "suppressed N similar" line', () => {
    const { log, lines } = recorder();
    const s = new SecurityLog(log, 3, 1000);
    for (let i = 0; i < 10; i++) s.report(SecurityEventKind.LoginFailed, event(i), i);
    s.report(SecurityEventKind.ProtocolViolation, { ...event(99), code: 'PROTOCOL_TOO_LARGE' }, 20);
    assert.equal(lines.length, 4, 'three login lines and the other kind has its own budget');
    s.tick(999);
    assert.equal(lines.length, 4, 'the interval is not over yet');
    s.tick(1000);
    assert.deepEqual(lines.at(-1), {
      msg: 'suppressed 7 similar events',
      fields: { event: 'login_failed', interval_ms: 1000 },
    });
    s.report(SecurityEventKind.LoginFailed, event(50), 1001);
    assert.equal(lines.at(-1)?.msg, 'client login failed', 'a new interval logs again');
  });

  it('ends an interval at the next event too, reporting what was suppressed first', () => {
    const { log, lines } = recorder();
    const s = new SecurityLog(log, 1, 1000);
    s.report(SecurityEventKind.LoginFailed, event(1), 0);
    s.report(SecurityEventKind.LoginFailed, event(2), 10);
    s.report(SecurityEventKind.LoginFailed, event(3), 5000);
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['client login failed', 'suppressed 1 similar events', 'client login failed'],
    );
  });
});
