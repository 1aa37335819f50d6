import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { proxyConfigFromObject, reservePoolFor } from './config.js';

const base = { listen: '127.0.0.1:6432', primary: '127.0.0.1:5432', auth_type: 'trust' };

describe('reserve pool and prepared-statement settings', () => {
  it('defaults as pgBouncer 1.24: no reserve, reserve_pool_timeout 5 s, 200 prepared statements', () => {
    const c = proxyConfigFromObject(base, 't');
    assert.equal(c.reserve_pool_size, 0);
    assert.equal(c.reserve_pool_timeout, 5);
    assert.equal(c.max_prepared_statements, 200);
  });

  it('reserve_pool per user wins over per database, which wins over reserve_pool_size', () => {
    const c = proxyConfigFromObject(
      {
        ...base,
        reserve_pool_size: 3,
        databases: { app: { reserve_pool: 2 } },
        users: { bob: { reserve_pool: 1 } },
      },
      't',
    );
    assert.equal(reservePoolFor(c, 'other', 'alice'), 3);
    assert.equal(reservePoolFor(c, 'app', 'alice'), 2);
    assert.equal(reservePoolFor(c, 'app', 'bob'), 1);
  });

  it('refuses negative values and unknown override keys', () => {
    assert.throws(() => proxyConfigFromObject({ ...base, reserve_pool_size: -1 }, 't'), /reserve_pool_size/);
    assert.throws(
      () => proxyConfigFromObject({ ...base, max_prepared_statements: -1 }, 't'),
      /max_prepared_statements/,
    );
    assert.throws(
      () => proxyConfigFromObject({ ...base, databases: { app: { reserve_pool: -1 } } }, 't'),
      /databases\.app\.reserve_pool/,
    );
    assert.throws(() => proxyConfigFromObject({ ...base, users: { bob: { reserve_pol: 1 } } }, 't'), /users\.bob/);
  });
});
