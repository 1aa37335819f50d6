import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../config/schema.js';
import { silentLogger } from '../../lib/log.js';
import {
  buildAuthenticationOk,
  buildBindComplete,
  buildCommandComplete,
  buildDataRow,
  buildErrorResponse,
  buildNoData,
  buildNoticeResponse,
  buildParseComplete,
  buildReadyForQuery,
  buildRowDescription,
  FrontendCode,
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
  parseStartup,
  ProtocolError,
  TxStatus,
} from '../../protocol/index.js';
import type { UserSecret } from './auth-file.js';
import { AuthQueryReplies, buildAuthQueryRequest, type AuthQueryOutcome } from './auth-query-reply.js';
import { AuthQuery, lookupSecret } from './auth-query.js';
import { DEFAULT_AUTH_QUERY, type ProxyConfig, proxyConfigFromObject } from '../config.js';
import { ProxyError, ProxyErrorCode } from '../errors.js';
import type { NodeAddr } from '../pool/router.js';
import { sleep } from '../../../test/helpers/wait.js';

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

/**
 * A PostgreSQL stand-in for AuthQuery: trusts every login (or refuses it), answers each Sync from `answers` by the
 * bound user name, and records what it was asked.
 */
class FakeServer {
  readonly server: Server;
  readonly logins: string[] = [];
  readonly asked: string[] = [];
  readonly sockets = new Set<Socket>();
  refuseLogin = false;
  /** Requests are answered only when this is true (tests of a server that does not answer). */
  answering = true;
  constructor(readonly answers: Map<string, Buffer>) {
    this.server = createServer((s) => this.serve(s));
  }

  async listen(): Promise<NodeAddr> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    const a = this.server.address() as { port: number };
    return { name: `fake:${a.port}`, host: '127.0.0.1', port: a.port };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private serve(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    const f = new Framer({ mode: FramerMode.Startup });
    let user = '';
    s.on('data', (chunk) => {
      f.push(chunk);
      for (let x = f.next(); x; x = f.next()) {
        if (x.type === 0) {
          const startup = parseStartup(x.payload);
          this.logins.push(startup.kind === 'startup' ? (startup.params.get('user') ?? '') : '?');
          if (this.refuseLogin)
            s.end(
              buildErrorResponse({
                severity: 'FATAL',
                sqlstate: '28P01',
                message: 'password authentication failed for user "auth"',
              }),
            );
          else s.write(Buffer.concat([buildAuthenticationOk(), buildReadyForQuery(TxStatus.Idle)]));
        } else if (x.type === FrontendCode.Bind) {
          const b = parseBind(x.payload);
          user = parseBindParameters(x.payload, b.paramsOffset).values[0]?.toString('utf8') ?? '';
        } else if (x.type === FrontendCode.Sync) {
          this.asked.push(user);
          if (this.answering) s.write(this.answers.get(user) ?? reply([]));
        }
      }
    });
  }
}

describe('AuthQuery against a fake primary', () => {
  const fakes: FakeServer[] = [];
  after(async () => {
    for (const f of fakes) await f.close();
  });

  async function setup(answers: [string, Buffer][], cfg: Partial<ProxyConfig> = {}) {
    const fake = new FakeServer(new Map(answers));
    fakes.push(fake);
    const node = await fake.listen();
    let now = 0;
    let primary: NodeAddr | ProxyError = node;
    const remembered = new Map<string, UserSecret | undefined>();
    const config = {
      ...proxyConfigFromObject({ listen: '127.0.0.1:1', primary: 'h:1', auth_type: 'trust', auth_user: 'auth' }, 't'),
      ...cfg,
    };
    const q = new AuthQuery({
      config: () => config,
      primary: () => primary,
      login: (user, database) => ({
        user,
        database,
        password: undefined,
        scramKeys: null,
        keyCache: new Map(),
        connectTimeoutMs: config.server_connect_timeout * 1000,
      }),
      remember: (u, s) => remembered.set(u, s),
      now: () => now,
      wallNow: () => 0,
      log: silentLogger,
    });
    return {
      fake,
      node,
      q,
      remembered,
      setPrimary: (p: NodeAddr | ProxyError) => (primary = p),
      advance: (ms: number) => q.tick((now += ms)),
    };
  }

  it('pipelines lookups on one connection as auth_user and hands the secrets to the pools', async () => {
    const t = await setup([
      ['alice', reply([['alice', MD5]])],
      ['bob', reply([['bob', VERIFIER]])],
    ]);
    const got = await Promise.all(['alice', 'nobody', 'bob'].map((u) => t.q.lookup(u, 'app')));
    assert.deepEqual(
      got.map((s) => s?.kind),
      ['md5', undefined, 'scram'],
    );
    assert.deepEqual(t.fake.logins, ['auth'], 'one connection, logged in as auth_user');
    assert.deepEqual(t.fake.asked, ['alice', 'nobody', 'bob']);
    assert.equal(t.remembered.get('alice')?.secret, MD5);
    assert.ok(t.remembered.has('nobody') && t.remembered.get('nobody') === undefined);
    t.q.close('test over');
  });

  it('a failing query is PROXY_AUTH_QUERY_FAILED (28000) and the connection keeps serving', async () => {
    const t = await setup([
      ['broken', reply({ error: 'permission denied for table pg_authid', sqlstate: '42501' })],
      ['alice', reply([['alice', MD5]])],
    ]);
    await assert.rejects(
      t.q.lookup('broken', 'app'),
      (e) =>
        e instanceof ProxyError &&
        e.code === 'PROXY_AUTH_QUERY_FAILED' &&
        e.sqlstate === '28000' &&
        !/pg_authid/.test(e.message),
    );
    assert.equal((await t.q.lookup('alice', 'app'))?.kind, 'md5');
    assert.equal(t.fake.logins.length, 1);
    t.q.close('test over');
  });

  it('without a leader the lookup waits, and runs once one is named', async () => {
    const t = await setup([['alice', reply([['alice', MD5]])]]);
    t.setPrimary(new ProxyError(ProxyErrorCode.NoLeader, 'no leader to route to: switchover'));
    const p = t.q.lookup('alice', 'app');
    t.advance(100);
    assert.deepEqual(t.fake.logins, []);
    t.setPrimary(t.node);
    t.advance(100);
    assert.equal((await p)?.secret, MD5);
    t.q.close('test over');
  });

  it('fails with 08006 when no leader appears within server_connect_timeout', async () => {
    const t = await setup([], { server_connect_timeout: 2 });
    t.setPrimary(new ProxyError(ProxyErrorCode.NoLeader, 'no leader to route to: no leader key'));
    const p = t.q.lookup('alice', 'app');
    t.advance(1999);
    t.advance(1);
    await assert.rejects(
      p,
      (e) =>
        e instanceof ProxyError &&
        e.code === 'PROXY_AUTH_QUERY_UNAVAILABLE' &&
        e.sqlstate === '08006' &&
        /no leader key/.test(e.message),
    );
  });

  it('fails with 08006 when the primary does not answer within server_connect_timeout', async () => {
    const t = await setup([], { server_connect_timeout: 2 });
    t.fake.answering = false;
    const p = t.q.lookup('alice', 'app');
    await waitFor(() => t.fake.asked.length === 1);
    t.advance(2000);
    await assert.rejects(p, (e) => e instanceof ProxyError && e.sqlstate === '08006' && /no answer/.test(e.message));
  });

  it('an auth_user the server refuses fails lookups with 08006, then at once for server_login_retry', async () => {
    const t = await setup([], { server_login_retry: 1000 });
    t.fake.refuseLogin = true;
    await assert.rejects(
      t.q.lookup('alice', 'app'),
      (e) => e instanceof ProxyError && e.sqlstate === '08006' && /auth_user could not log in/.test(e.message),
    );
    await assert.rejects(t.q.lookup('bob', 'app'), (e) => e instanceof ProxyError && e.sqlstate === '08006');
    assert.equal(t.fake.logins.length, 1, 'no new attempt within server_login_retry');
    t.fake.refuseLogin = false;
    t.advance(1000);
    assert.equal(await t.q.lookup('bob', 'app'), undefined);
    assert.equal(t.fake.logins.length, 2);
    t.q.close('test over');
  });

  it('asks the new primary after a leader change and closes the connections to the old one', async () => {
    const t = await setup([['alice', reply([['alice', MD5]])]]);
    await t.q.lookup('alice', 'app');
    await t.q.lookup('alice', 'other');
    assert.equal(t.fake.logins.length, 2, 'one connection per database');
    const t2 = await setup([['alice', reply([['alice', VERIFIER]])]]);
    t.setPrimary(t2.node);
    assert.equal((await t.q.lookup('alice', 'app'))?.kind, 'scram');
    assert.equal(t2.fake.logins.length, 1);
    await waitFor(() => t.fake.sockets.size === 1, 'the old primary\'s connection for "app" closes at the next lookup');
    t.advance(100);
    await waitFor(() => t.fake.sockets.size === 0, 'the janitor closes the one for "other"');
    t.q.close('test over');
  });
});

async function waitFor(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await sleep(10);
  }
  assert.fail(`timed out waiting for: ${what}`);
}
