import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDsn, redact } from './connect.js';
import type { DrillError } from './errors.js';

describe('parseDsn', () => {
  it('reads a libpq multi-host URL: hosts in order, default port 5432, user, password, database', () => {
    const d = parseDsn('postgresql://app:p%40ss@10.0.0.1:5433,db2,[::1]:6000/shop?target_session_attrs=read-write');
    assert.deepEqual(d.endpoints, [
      { host: '10.0.0.1', port: 5433 },
      { host: 'db2', port: 5432 },
      { host: '::1', port: 6000 },
    ]);
    assert.deepEqual(d.login, { user: 'app', password: 'p@ss', database: 'shop', ssl: false });
  });

  it('sslmode: require encrypts without verifying; verify-full verifies', () => {
    assert.deepEqual(parseDsn('postgres://u@h/d?sslmode=require').login.ssl, { rejectUnauthorized: false });
    assert.deepEqual(parseDsn('postgres://u@h/d?sslmode=verify-full').login.ssl, {});
    assert.equal(parseDsn('postgres://u@h/d?sslmode=prefer').login.ssl, false);
  });

  it('defaults: user postgres, database = user, no password', () => {
    assert.deepEqual(parseDsn('postgres://h').login, { user: 'postgres', database: 'postgres', ssl: false });
  });

  it('refuses what it cannot use, naming --dsn and hiding the password', () => {
    for (const bad of [
      'mysql://h/d',
      'postgres://u:secret@/d',
      'postgres://u:secret@h:99999/d',
      'postgres://u:secret@h/d?sslmode=maybe',
      'postgres://u:secret@h/d?options=-c',
    ]) {
      assert.throws(
        () => parseDsn(bad),
        (e: DrillError) =>
          e.code === 'DRILL_BAD_DSN' && e.exit === 2 && /--dsn/.test(e.message) && !/secret/.test(e.message),
        bad,
      );
    }
    assert.equal(redact('postgres://u:secret@h/d'), 'postgres://u:***@h/d');
  });
});
