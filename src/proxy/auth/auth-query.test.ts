import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../config/schema.js';
import {
  buildBindComplete,
  buildCommandComplete,
  buildDataRow,
  buildErrorResponse,
  buildNoData,
  buildNoticeResponse,
  buildParseComplete,
  buildReadyForQuery,
  buildRowDescription,
  Framer,
  FramerMode,
  type Frame,
  makeScramVerifier,
  md5Secret,
  parseBind,
  parseBindParameters,
  parseDescribe,
  parseExecute,
  parseParse,
  ProtocolError,
  TxStatus,
} from '../../protocol/index.js';
import type { UserSecret } from './auth-file.js';
import { AuthQueryReplies, buildAuthQueryRequest, type AuthQueryOutcome } from './auth-query-reply.js';
import { lookupSecret } from './auth-query.js';
import { DEFAULT_AUTH_QUERY, proxyConfigFromObject } from '../config.js';

function frames(bytes: Buffer, mode: FramerMode = FramerMode.Regular): Frame[] {
  const f = new Framer({ mode });
  f.push(bytes);
  const out: Frame[] = [];
  for (let x = f.next(); x; x = f.next()) out.push(x);
  return out;
}

const COLUMNS = buildRowDescription([{ name: 'rolname', typeOid: 19 }, { name: 'rolpassword' }]);
const MD5 = md5Secret('alice', 'pw');
const VERIFIER = makeScramVerifier('pw', Buffer.alloc(16, 3));

/** A server's reply to one auth_query request: the rows given, or an ErrorResponse. */
function reply(rows: (string | null)[][] | { error: string; sqlstate?: string }, columns = COLUMNS): Buffer {
  const head = [buildParseComplete(), buildBindComplete()];
  if (!Array.isArray(rows)) {
    return Buffer.concat([
      ...head,
      buildErrorResponse({ severity: 'ERROR', sqlstate: rows.sqlstate ?? '42883', message: rows.error }),
      buildReadyForQuery(TxStatus.Idle),
    ]);
  }
  return Buffer.concat([
    ...head,
    columns,
    ...rows.map((r) => buildDataRow(r)),
    buildCommandComplete(`SELECT ${rows.length}`),
    buildReadyForQuery(TxStatus.Idle),
  ]);
}

const secretOf = (o: AuthQueryOutcome | undefined): UserSecret | undefined | 'error' =>
  o?.kind === 'secret' ? o.secret : 'error';

describe('auth_query request', () => {
  it('binds the user name as $1 and never puts it in the SQL text', () => {
    const evil = `x'; DROP ROLE postgres; --`;
    const f = frames(buildAuthQueryRequest(DEFAULT_AUTH_QUERY, evil));
    assert.deepEqual(
      f.map((x) => String.fromCharCode(x.type)),
      ['P', 'B', 'D', 'E', 'S'],
    );
    const parse = parseParse((f[0] as Frame).payload);
    assert.equal(parse.name, '');
    assert.equal(parse.query, DEFAULT_AUTH_QUERY);
    const bind = parseBind((f[1] as Frame).payload);
    const params = parseBindParameters((f[1] as Frame).payload, bind.paramsOffset);
    assert.deepEqual(
      params.values.map((v) => v?.toString('utf8')),
      [evil],
    );
    assert.deepEqual(parseDescribe((f[2] as Frame).payload), { kind: 'P', name: '' });
    assert.equal(parseExecute((f[3] as Frame).payload).maxRows, 0);
  });
});

describe('auth_query replies', () => {
  // One stream answering eight pipelined requests, in order.
  const cases: { user: string; bytes: Buffer; want: UserSecret | undefined | 'error' }[] = [
    { user: 'alice', bytes: reply([['alice', MD5]]), want: { user: 'alice', secret: MD5, kind: 'md5' } },
    { user: 'bob', bytes: reply([['bob', VERIFIER]]), want: { user: 'bob', secret: VERIFIER, kind: 'scram' } },
    { user: 'nobody', bytes: reply([]), want: undefined },
    { user: 'expired', bytes: reply([['expired', null]]), want: undefined },
    { user: 'ghost', bytes: reply([[null, null]]), want: undefined },
    { user: 'broken', bytes: reply({ error: 'function pgbouncer.user_lookup(name) does not exist' }), want: 'error' },
    {
      user: 'wide',
      bytes: reply([['wide', MD5, 'x']], buildRowDescription([{ name: 'a' }, { name: 'b' }, { name: 'c' }])),
      want: 'error',
    },
    {
      user: 'twice',
      bytes: reply([
        ['twice', MD5],
        ['twice', MD5],
      ]),
      want: 'error',
    },
  ];
  const stream = Buffer.concat(cases.map((c) => c.bytes));

  it('reads each outcome in request order, whatever the cut of the byte stream', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const r = new AuthQueryReplies();
      for (const c of cases) r.expect(c.user);
      const got = [...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))];
      assert.deepEqual(
        got.map(secretOf),
        cases.map((c) => c.want),
        `cut at ${cut}`,
      );
      assert.equal(r.outstanding, 0);
    }
  });

  it('keeps the server error for the log and names what is wrong with a bad result', () => {
    const r = new AuthQueryReplies();
    for (const c of cases) r.expect(c.user);
    const errors = r.push(stream).filter((o) => o.kind === 'error') as { message: string; sqlstate: string }[];
    assert.deepEqual(
      errors.map((e) => e.sqlstate),
      ['42883', '', ''],
    );
    assert.match(errors[0]?.message ?? '', /does not exist/);
    assert.match(errors[1]?.message ?? '', /two columns .* got 3/);
    assert.match(errors[2]?.message ?? '', /2 rows/);
  });

  it('a statement without a result set is an error; notices between replies are ignored', () => {
    const r = new AuthQueryReplies();
    r.expect('u');
    const noRows = Buffer.concat([
      buildParseComplete(),
      buildBindComplete(),
      buildNoData(),
      buildCommandComplete('DO'),
      buildReadyForQuery(TxStatus.Idle),
    ]);
    const [o] = r.push(
      Buffer.concat([noRows, buildNoticeResponse({ severity: 'NOTICE', sqlstate: '00000', message: 'hi' })]),
    );
    assert.equal(o?.kind, 'error');
    assert.match((o as { message: string }).message, /no result set/);
  });

  it('bytes with no request outstanding are a protocol error', () => {
    const r = new AuthQueryReplies();
    assert.throws(
      () => r.push(reply([])),
      (e) => e instanceof ProtocolError,
    );
  });
});

describe('where a secret comes from', () => {
  const file = {
    get: (u: string): UserSecret | undefined => (u === 'filed' ? { user: u, secret: 'pw', kind: 'plain' } : undefined),
  };
  const asked: string[] = [];
  const query = { lookup: (u: string, db: string) => (asked.push(`${u}@${db}`), Promise.resolve(undefined)) };

  it('the auth file first; auth_query only with auth_user, in auth_dbname or the client database', async () => {
    assert.deepEqual(lookupSecret(file, query, { auth_user: 'auth' }, 'filed', 'app', false), {
      user: 'filed',
      secret: 'pw',
      kind: 'plain',
    });
    assert.equal(lookupSecret(file, query, {}, 'other', 'app', false), undefined);
    assert.ok(lookupSecret(file, query, { auth_user: 'auth' }, 'other', 'app', false) instanceof Promise);
    assert.ok(
      lookupSecret(file, query, { auth_user: 'auth', auth_dbname: 'authdb' }, 'other', 'app', false) instanceof Promise,
    );
    // The admin console's database exists only in the proxy: only an explicit auth_dbname can answer for it.
    assert.equal(lookupSecret(file, query, { auth_user: 'auth' }, 'other', 'pgbouncer', true), undefined);
    assert.ok(
      lookupSecret(file, query, { auth_user: 'auth', auth_dbname: 'authdb' }, 'other', 'pgbouncer', true) instanceof
        Promise,
    );
    assert.deepEqual(asked, ['other@app', 'other@authdb', 'other@authdb']);
  });
});

describe('auth_query settings', () => {
  const base = { listen: '127.0.0.1:1', primary: 'h:1', auth_type: 'trust' };
  const problems = (extra: Record<string, unknown>) => {
    try {
      proxyConfigFromObject({ ...base, ...extra }, 't');
      return [];
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.problems.map((p) => `${p.path}: ${p.message}`);
    }
  };

  it('defaults to pgBouncer 1.24.1 query; auth_user alone can serve md5/SCRAM without an auth file', () => {
    assert.equal(proxyConfigFromObject(base, 't').auth_query, DEFAULT_AUTH_QUERY);
    assert.deepEqual(problems({ auth_type: 'scram-sha-256', auth_user: 'pgkeel_auth' }), []);
    assert.deepEqual(problems({ auth_type: 'md5' }), [
      'auth_file: is required with auth_type md5 (or auth_user); set auth_type: trust explicitly to let clients in without a password',
    ]);
  });

  it('refuses auth_query and auth_dbname without auth_user, and a query without $1, naming the key', () => {
    assert.deepEqual(problems({ auth_dbname: 'authdb' }), [
      'auth_dbname: needs auth_user (the user auth_query runs as)',
    ]);
    assert.deepEqual(problems({ auth_query: 'SELECT * FROM f($1)' }), [
      'auth_query: needs auth_user (the user it runs as)',
    ]);
    assert.deepEqual(problems({ auth_user: 'a', auth_query: 'SELECT usename, passwd FROM pg_shadow' }), [
      'auth_query: must take the user name as the parameter $1',
    ]);
  });
});
