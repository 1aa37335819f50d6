/**
 * Integration-test fixture for the proxy: one PostgreSQL (postgres.ts) in a temp directory, started before the
 * file's tests, and proxies in front of it. A proxy started in a test is closed after that test (its idle server
 * connections would otherwise use up max_connections); one started in `setup` lives until the end. After
 * all tests every proxy is closed, PostgreSQL stopped and the directory removed — also when a test failed.
 *
 *   const fx = proxyFixture('proxy-x', { postgres: { maxConnections: 30 }, proxy: { default_pool_size: 2 } });
 *   it('…', async () => { const at = await fx.proxy({ pool_mode: 'session' }); … fx.pg.sql(…) … });
 *
 * The file's own preparation goes in `setup`, not in a `before` hook of its own: node:test (20) starts a file's
 * top-level `before` hooks without waiting for the previous one, so such a hook could run before PostgreSQL is up.
 */
import { after, afterEach, before, beforeEach } from 'node:test';
import pg from 'pg';
import { silentLogger } from '../../src/lib/log.js';
import { proxyConfigFromObject, type ProxyConfig } from '../../src/proxy/config.js';
import { type ProxyOptions, type RunningProxy, startProxy } from '../../src/proxy/proxy.js';
import { type PostgresOptions, type RunningPostgres, startPostgres } from './postgres.js';
import { tempDir } from './tmp.js';

/** A started proxy and its read-write address. */
export interface ProxyAt {
  readonly host: string;
  readonly port: number;
  readonly p: RunningProxy;
}

export interface ProxyFixtureOptions {
  /** PostgreSQL's options, or a function making them in the temp directory first (certificates). */
  readonly postgres?: PostgresOptions | ((dir: string) => PostgresOptions | Promise<PostgresOptions>);
  /** Settings every proxy of the file starts with (after listen and primary; a test's own settings win). */
  readonly proxy?: Readonly<Record<string, unknown>>;
  /** Runs once PostgreSQL is up, before the first test (roles, tables; a proxy for the whole file). */
  readonly setup?: () => Promise<void>;
}

export interface ProxyFixture {
  /** The temp directory (set once the `before` hook ran). */
  readonly dir: string;
  readonly pg: RunningPostgres;
  /** A proxy listening on a free port in front of `pg`, with the file's settings and `extra`; silent unless `opts.log`. */
  proxy(extra?: Readonly<Record<string, unknown>>, opts?: ProxyOptions): Promise<ProxyAt>;
  /** A proxy from a ready config (a config file's), closed like the others. */
  start(config: ProxyConfig, opts?: ProxyOptions): Promise<ProxyAt>;
}

export function proxyFixture(prefix: string, options: ProxyFixtureOptions = {}): ProxyFixture {
  let dir: ({ path: string } & AsyncDisposable) | undefined;
  let pgsrv: RunningPostgres | undefined;
  /** Started in `setup`: closed after all tests. */
  const fileProxies: RunningProxy[] = [];
  /** Started by the running test: closed after it. */
  const testProxies: RunningProxy[] = [];
  let inTest = false;

  before(async () => {
    dir = await tempDir(prefix);
    const o = options.postgres;
    pgsrv = await startPostgres(dir.path, typeof o === 'function' ? await o(dir.path) : o);
    await options.setup?.();
  });
  beforeEach(() => {
    inTest = true;
  });
  afterEach(async () => {
    inTest = false;
    for (const p of testProxies.splice(0)) await p.close();
  });
  after(async () => {
    for (const p of [...testProxies, ...fileProxies]) await p.close();
    await pgsrv?.stop();
    await dir?.[Symbol.asyncDispose]();
  });

  const fx: ProxyFixture = {
    get dir() {
      return (dir as { path: string }).path;
    },
    get pg() {
      return pgsrv as RunningPostgres;
    },
    async start(config, opts = {}) {
      const p = await startProxy(config, { log: silentLogger, ...opts });
      (inTest ? testProxies : fileProxies).push(p);
      const [host, port] = p.rwAddress.split(':') as [string, string];
      return { host, port: Number(port), p };
    },
    proxy(extra = {}, opts = {}) {
      const primary = `${fx.pg.host}:${fx.pg.port}`;
      // auth_type trust explicitly (the default is scram-sha-256): most files test pooling, not authentication.
      return fx.start(
        proxyConfigFromObject(
          { listen: '127.0.0.1:0', primary, auth_type: 'trust', ...options.proxy, ...extra },
          'test',
        ),
        opts,
      );
    },
  };
  return fx;
}

/** A connected node-postgres client (user and database postgres unless `opts` says otherwise); errors after connect are ignored. */
export async function connectClient(
  at: { host: string; port: number },
  opts: pg.ClientConfig = {},
): Promise<pg.Client> {
  const c = new pg.Client({ host: at.host, port: at.port, user: 'postgres', database: 'postgres', ...opts });
  c.on('error', () => {});
  await c.connect();
  return c;
}
