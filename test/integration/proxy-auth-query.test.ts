/**
 * auth_user/auth_query against one real PostgreSQL: users that are not in the auth file get their secret from the
 * primary (SCRAM and md5 roles, an expired role, unknown users, a SECURITY DEFINER lookup in auth_dbname run by a
 * non-superuser), and the proxy then logs in to the server as them — with the md5 hash, or with the SCRAM keys
 * recovered from the client's exchange (pg_hba demands md5/SCRAM of these roles, so trust cannot hide a failure).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { freePort } from '../../src/lib/net.js';
import {
  BackendCode,
  buildSASLInitialResponse,
  buildSASLResponse,
  buildStartupMessage,
  buildTerminate,
  Framer,
  parseAuthentication,
  SCRAM_SHA_256,
  ScramClient,
} from '../../src/protocol/index.js';
import { connectClient, proxyFixture } from '../helpers/proxy.js';
import { sleep } from '../helpers/wait.js';

const ROLES = {
  scram: { user: 'aq_scram', password: 'aq-scram-pw' },
  md5: { user: 'aq_md5', password: 'aq-md5-pw' },
  expired: { user: 'aq_expired', password: 'aq-expired-pw' },
  /** auth_user for the default query on pg_authid (needs superuser). */
  auth: { user: 'pgkeel_auth', password: 'auth-pw' },
  /** auth_user that may only call a SECURITY DEFINER function in database authdb. */
  lookup: { user: 'pgkeel_lookup', password: 'lookup-pw' },
} as const;
const FILE_PASSWORD = 'file-pw';
const LOOKUP_QUERY = 'SELECT uname, phash FROM pgkeel.user_lookup($1)';

const fx = proxyFixture('proxy-auth-query', {
  postgres: { maxConnections: 40 },
  proxy: { default_pool_size: 2 },
  setup,
});
let authFile: string;

/** A proxy with the auth file, in front of the test PostgreSQL unless `primary` names another address. */
async function proxy(extra: Record<string, unknown>, primary?: string): Promise<{ host: string; port: number }> {
  const { host, port } = await fx.proxy({ auth_file: authFile, ...extra, ...(primary ? { primary } : {}) });
  return { host, port };
}

function client(
  at: { host: string; port: number },
  user: string,
  password: string,
  database = 'postgres',
): Promise<pg.Client> {
  return connectClient(at, { user, password, database });
}

/** Logs in, runs a query on the server and returns who the server says we are. */
async function whoAmI(at: { host: string; port: number }, user: string, password: string): Promise<string> {
  const c = await client(at, user, password);
  try {
    return (await c.query('select current_user as u')).rows[0].u as string;
  } finally {
    await c.end();
  }
}

/** Backend messages from a raw socket, one at a time: (type, copied payload). */
function messages(s: Socket): () => Promise<{ type: number; payload: Buffer }> {
  const framer = new Framer();
  const got: { type: number; payload: Buffer }[] = [];
  let wake: (() => void) | null = null;
  s.on('data', (chunk: Buffer) => {
    framer.push(chunk);
    for (let f = framer.next(); f; f = framer.next()) got.push({ type: f.type, payload: Buffer.from(f.payload) });
    wake?.();
  });
  return async () => {
    while (got.length === 0) await new Promise<void>((r) => (wake = r));
    return got.shift() as { type: number; payload: Buffer };
  };
}

/** Every lookup takes 0.3 s: long enough for a client to act while its secret is being looked up. */
const SLOW_QUERY = 'SELECT rolname, rolpassword FROM pg_authid CROSS JOIN pg_sleep(0.3) WHERE rolname = $1';

const sqlstate = (code: string) => (e: { code?: string }) => {
  assert.equal(e.code, code);
  return true;
};

/** Roles, the lookup function, pg_hba lines and the auth file (fixture setup, once PostgreSQL is up). */
async function setup(): Promise<void> {
  const pgsrv = fx.pg;
  const scram = (r: { user: string; password: string }, more = '') =>
    `SET password_encryption = 'scram-sha-256'; CREATE ROLE ${r.user} LOGIN PASSWORD '${r.password}' ${more}`;
  await pgsrv.sql(scram(ROLES.scram));
  await pgsrv.sql(
    `SET password_encryption = 'md5'; CREATE ROLE ${ROLES.md5.user} LOGIN PASSWORD '${ROLES.md5.password}'`,
  );
  await pgsrv.sql(scram(ROLES.expired, "VALID UNTIL '2000-01-01'"));
  await pgsrv.sql(scram(ROLES.auth, 'SUPERUSER'));
  await pgsrv.sql(scram(ROLES.lookup));
  await pgsrv.sql('CREATE DATABASE authdb');
  const authdb = new pg.Client({ host: pgsrv.host, port: pgsrv.port, user: 'postgres', database: 'authdb' });
  await authdb.connect();
  try {
    // pgBouncer's documented pattern: a non-superuser auth_user calls a SECURITY DEFINER function. For an unknown
    // user it returns one row of NULLs, the other "no such user" form auth_query must understand.
    await authdb.query(`CREATE SCHEMA pgkeel;
      CREATE FUNCTION pgkeel.user_lookup(i_user text, OUT uname text, OUT phash text) RETURNS record LANGUAGE sql SECURITY DEFINER
        AS $$ SELECT rolname::text, rolpassword FROM pg_authid WHERE rolname = i_user AND rolcanlogin $$;
      REVOKE ALL ON FUNCTION pgkeel.user_lookup(text) FROM PUBLIC;
      GRANT USAGE ON SCHEMA pgkeel TO ${ROLES.lookup.user};
      GRANT EXECUTE ON FUNCTION pgkeel.user_lookup(text) TO ${ROLES.lookup.user};`);
  } finally {
    await authdb.end();
  }
  // These roles must prove a password to the server: their lines go before the fixture's final "trust all".
  const hba = join(pgsrv.dataDir, 'pg_hba.conf');
  const lines = readFileSync(hba, 'utf8').split('\n');
  const trustAll = lines.findIndex((l) => l.startsWith('host all all'));
  lines.splice(
    trustAll,
    0,
    `host all ${ROLES.scram.user},${ROLES.expired.user},${ROLES.auth.user},${ROLES.lookup.user} 127.0.0.1/32 scram-sha-256`,
    `host all ${ROLES.md5.user} 127.0.0.1/32 md5`,
  );
  writeFileSync(hba, lines.join('\n'));
  await pgsrv.sql('SELECT pg_reload_conf()');
  // The postmaster reloads asynchronously: wait until a wrong password is refused directly.
  for (let i = 0; ; i++) {
    const c = new pg.Client({
      host: pgsrv.host,
      port: pgsrv.port,
      user: ROLES.md5.user,
      password: 'wrong',
      database: 'postgres',
    });
    const refused = await c.connect().then(
      () => c.end().then(() => false),
      () => true,
    );
    if (refused) break;
    if (i > 200) throw new Error('pg_hba.conf was not reloaded');
    await sleep(50);
  }
  authFile = join(fx.dir, 'userlist.txt');
  writeFileSync(
    authFile,
    [
      `"${ROLES.auth.user}" "${ROLES.auth.password}"`,
      `"${ROLES.lookup.user}" "${ROLES.lookup.password}"`,
      // The server trusts postgres and has no password for it: only the file can let this password in.
      `"postgres" "${FILE_PASSWORD}"`,
    ].join('\n') + '\n',
  );
}

describe('auth_query through the proxy', () => {
  it('scram-sha-256: a SCRAM role logs in and its keys log the proxy in to the server; failures are 28P01', async () => {
    const at = await proxy({ auth_type: 'scram-sha-256', auth_user: ROLES.auth.user });
    assert.equal(await whoAmI(at, ROLES.scram.user, ROLES.scram.password), ROLES.scram.user);
    // A second login reuses the pool's server connection or opens one with the same keys.
    assert.equal(await whoAmI(at, ROLES.scram.user, ROLES.scram.password), ROLES.scram.user);
    await assert.rejects(client(at, ROLES.scram.user, 'wrong'), sqlstate('28P01'));
    await assert.rejects(client(at, 'nobody', 'x'), sqlstate('28P01'));
    await assert.rejects(client(at, ROLES.expired.user, ROLES.expired.password), sqlstate('28P01'));
    // A user in the auth file is checked against the file, not the query.
    assert.equal(await whoAmI(at, 'postgres', FILE_PASSWORD), 'postgres');
    await assert.rejects(client(at, 'postgres', 'wrong'), sqlstate('28P01'));
    // An md5 hash cannot serve SCRAM: the same error as an md5 hash in the auth file.
    await assert.rejects(client(at, ROLES.md5.user, ROLES.md5.password), sqlstate('28000'));
  });

  it('md5: an md5 role is challenged with md5 and the proxy logs in to the md5 server with the hash', async () => {
    const at = await proxy({ auth_type: 'md5', auth_user: ROLES.auth.user });
    assert.equal(await whoAmI(at, ROLES.md5.user, ROLES.md5.password), ROLES.md5.user);
    await assert.rejects(client(at, ROLES.md5.user, 'wrong'), sqlstate('28P01'));
    // A SCRAM secret upgrades the exchange to SCRAM, as with the auth file.
    assert.equal(await whoAmI(at, ROLES.scram.user, ROLES.scram.password), ROLES.scram.user);
    await assert.rejects(client(at, 'nobody', 'x'), sqlstate('28P01'));
  });

  it('trust: the user must still exist', async () => {
    const at = await proxy({ auth_type: 'trust', auth_user: ROLES.auth.user });
    assert.equal(await whoAmI(at, ROLES.md5.user, 'not checked'), ROLES.md5.user);
    await assert.rejects(client(at, 'nobody', 'x'), sqlstate('28P01'));
  });

  it('auth_dbname: a SECURITY DEFINER lookup in another database, run by a non-superuser auth_user', async () => {
    const at = await proxy({
      auth_type: 'scram-sha-256',
      auth_user: ROLES.lookup.user,
      auth_dbname: 'authdb',
      auth_query: LOOKUP_QUERY,
    });
    assert.equal(await whoAmI(at, ROLES.scram.user, ROLES.scram.password), ROLES.scram.user);
    await assert.rejects(client(at, 'nobody', 'x'), sqlstate('28P01'));
    // Without auth_dbname the function is looked for in the client's database, where it does not exist.
    const wrongDb = await proxy({ auth_type: 'scram-sha-256', auth_user: ROLES.lookup.user, auth_query: LOOKUP_QUERY });
    await assert.rejects(client(wrongDb, ROLES.scram.user, ROLES.scram.password), sqlstate('28000'));
  });

  it('a primary that cannot be asked fails the login with 08006', async () => {
    const nothing = await freePort();
    const at = await proxy({ auth_type: 'scram-sha-256', auth_user: ROLES.auth.user }, `127.0.0.1:${nothing}`);
    await assert.rejects(client(at, ROLES.scram.user, ROLES.scram.password), sqlstate('08006'));
  });

  it('a client that leaves during the lookup is forgotten; the next login on the same connection works', async () => {
    // trust: a client that was not forgotten would be logged in to its pool when the secret arrives, and counted.
    const at = await proxy({ auth_type: 'trust', auth_user: ROLES.auth.user, auth_query: SLOW_QUERY });
    await new Promise<void>((resolve, reject) => {
      const s = connect(at, () => {
        s.write(buildStartupMessage({ user: ROLES.md5.user, database: 'postgres' }));
        s.destroy();
        resolve();
      });
      s.on('error', reject);
    });
    // This lookup is pipelined behind the abandoned one on the same auth connection, so that one is answered first.
    assert.equal(await whoAmI(at, ROLES.md5.user, 'not checked'), ROLES.md5.user);
    const admin = await client(at, 'postgres', FILE_PASSWORD, 'pgbouncer');
    try {
      const clients = (await admin.query('SHOW CLIENTS')).rows as { user: string }[];
      assert.deepEqual(
        clients.map((r) => r.user),
        ['postgres'],
      );
      const pools = (await admin.query('SHOW POOLS')).rows as { user: string; cl_active: number; cl_waiting: number }[];
      const pool = pools.find((r) => r.user === ROLES.md5.user);
      assert.deepEqual([pool?.cl_active, pool?.cl_waiting], [0, 0]);
    } finally {
      await admin.end();
    }
  });

  it('what a client sends during the lookup waits its turn: a SCRAM first message sent with the startup packet', async () => {
    const at = await proxy({ auth_type: 'scram-sha-256', auth_user: ROLES.auth.user, auth_query: SLOW_QUERY });
    const s = connect(at);
    s.on('error', () => {});
    try {
      const next = messages(s);
      const scram = new ScramClient(ROLES.scram.password, () => 'pipelined-client-nonce');
      // The client-first message needs nothing from the server, so a client may send it before being asked.
      s.write(
        Buffer.concat([
          buildStartupMessage({ user: ROLES.scram.user, database: 'postgres' }),
          buildSASLInitialResponse(SCRAM_SHA_256, scram.clientFirst()),
        ]),
      );
      const offer = parseAuthentication((await next()).payload);
      assert.equal(offer.kind, 'sasl');
      const cont = parseAuthentication((await next()).payload);
      assert.equal(cont.kind, 'sasl-continue');
      s.write(buildSASLResponse(scram.onServerFirst((cont as { data: Buffer }).data)));
      const fin = parseAuthentication((await next()).payload);
      assert.equal(fin.kind, 'sasl-final');
      scram.verifyServerFinal((fin as { data: Buffer }).data);
      assert.equal(parseAuthentication((await next()).payload).kind, 'ok');
      for (let m = await next(); m.type !== BackendCode.ReadyForQuery; m = await next())
        assert.notEqual(m.type, BackendCode.ErrorResponse);
      s.write(buildTerminate());
    } finally {
      s.destroy();
    }
  });
});
