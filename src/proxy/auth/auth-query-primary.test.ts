import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../lib/log.js';
import {
  buildAuthenticationOk,
  buildBindComplete,
  buildCommandComplete,
  buildDataRow,
  buildErrorResponse,
  buildParseComplete,
  buildReadyForQuery,
  buildRowDescription,
  FrontendCode,
  Framer,
  FramerMode,
  makeScramVerifier,
  md5Secret,
  parseBind,
  parseBindParameters,
  parseStartup,
  TxStatus,
} from '../../protocol/index.js';
import type { UserSecret } from './auth-file.js';
import { AuthQuery } from './auth-query.js';
import { type ProxyConfig, proxyConfigFromObject } from '../config.js';
import { ProxyError, ProxyErrorCode } from '../errors.js';
import type { NodeAddr } from '../pool/router.js';
import { sleep } from '../../../test/helpers/wait.js';

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
