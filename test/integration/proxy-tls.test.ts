/**
 * TLS on both sides of the proxy against one real PostgreSQL with ssl = on, certificates made by `openssl` at start
 * (a CA; the server's for 127.0.0.1/localhost, also presented by the proxy to its clients; one for another host
 * name; a client certificate). Clients: psql and node-postgres.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { createLogger } from '../../src/lib/log.js';
import { run, sleep } from '../../src/lib/proc.js';
import { buildCancelRequest, buildSSLRequest, buildStartupMessage } from '../../src/protocol/index.js';
import { loadProxyConfig } from '../../src/proxy/config.js';
import { installServerCert } from '../helpers/postgres.js';
import { connectClient as client, proxyFixture } from '../helpers/proxy.js';

let certs: string;
/** A hung test fails instead of holding the machine's heavy-test lock. */
const T = { timeout: 60_000 };
const C = (name: string): string => join(certs, name);

async function openssl(args: string[]): Promise<void> {
  const r = await run('openssl', args, { asPostgres: false, cwd: certs, timeoutMs: 30_000 });
  assert.equal(r.code, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function ca(name: string): Promise<void> {
  await openssl([
    'req',
    '-x509',
    ...EC,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-subj',
    `/CN=pgkeel test ${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/** A leaf certificate signed by the test CA (or `by`). */
async function leaf(name: string, cn: string, ext: string, by = 'ca'): Promise<void> {
  await openssl(['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  writeFileSync(C(`${name}.ext`), ext + '\n');
  await openssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${by}.crt`,
    '-CAkey',
    `${by}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

// The certificates are made before PostgreSQL starts: it starts with ssl = on and the server's.
const fx = proxyFixture('proxy-tls', {
  postgres: async (dir) => {
    certs = join(dir, 'certs');
    await run('mkdir', ['-p', certs], { asPostgres: false });
    await ca('ca');
    await ca('otherca');
    await leaf('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
    await leaf('wrong', 'wrong.example', 'subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth');
    await leaf('client', 'postgres', 'extendedKeyUsage=clientAuth');
    await leaf('stranger', 'postgres', 'extendedKeyUsage=clientAuth', 'otherca');
    return { maxConnections: 40, ssl: { certFile: C('server.crt'), keyFile: C('server.key') } };
  },
  proxy: { default_pool_size: 2 },
});
const proxy = fx.proxy;

/** The proxy presents the server's certificate (valid for 127.0.0.1) to its clients. */
const clientTls = (mode: string): Record<string, string> => ({
  client_tls_sslmode: mode,
  client_tls_key_file: C('server.key'),
  client_tls_cert_file: C('server.crt'),
  client_tls_ca_file: C('ca.crt'),
});

async function connectError(
  at: { host: string; port: number },
  opts: pg.ClientConfig = {},
): Promise<Error & { code?: string }> {
  const c = new pg.Client({ host: at.host, port: at.port, user: 'postgres', database: 'postgres', ...opts });
  c.on('error', () => {});
  const err = await c.connect().then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  // Not end(): after a TLS alert node-postgres can wait forever for an 'end' that never comes.
  (c as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
  assert.ok(err, 'the connection was expected to fail');
  return err;
}

async function serverSsl(at: { host: string; port: number }, opts: pg.ClientConfig = {}): Promise<boolean> {
  const c = await client(at, opts);
  try {
    return (await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl as boolean;
  } finally {
    await c.end();
  }
}

const psql = (at: { host: string; port: number }, sslmode: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
  run('psql', ['-XAt', ...args], {
    asPostgres: false,
    timeoutMs: 60_000,
    env: {
      PGHOST: at.host,
      PGPORT: String(at.port),
      PGUSER: 'postgres',
      PGDATABASE: 'postgres',
      PGSSLMODE: sslmode,
      PGCONNECT_TIMEOUT: '10',
      ...extraEnv,
    },
  });

/** SHOW CLIENTS/SERVERS rows as objects (node-postgres, simple protocol). */
async function show(
  at: { host: string; port: number },
  what: 'CLIENTS' | 'SERVERS',
  opts: pg.ClientConfig = {},
): Promise<Record<string, unknown>[]> {
  const admin = await client(at, { database: 'pgbouncer', ...opts });
  try {
    return (await admin.query(`SHOW ${what}`)).rows as Record<string, unknown>[];
  } finally {
    await admin.end();
  }
}

/** ALTER SYSTEM, reload, and wait until a new backend sees the value (the postmaster reloads SSL with it). */
async function setServer(settings: Record<string, string>): Promise<void> {
  for (const [k, v] of Object.entries(settings)) await fx.pg.sql(`ALTER SYSTEM SET ${k} = '${v}'`);
  await fx.pg.sql('SELECT pg_reload_conf()');
  const [k, v] = Object.entries(settings)[0] as [string, string];
  for (let i = 0; i < 500; i++) {
    const r = await fx.pg.sql('SELECT current_setting($1) AS v', [k]);
    if (r[0]?.['v'] === v) return;
    await sleep(20);
  }
  assert.fail(`PostgreSQL did not apply ${k} = ${v}`);
}

const setServerCert = (name: string) => setServer({ ssl_cert_file: `${name}.crt`, ssl_key_file: `${name}.key` });

describe('proxy → server TLS (server_tls_sslmode)', () => {
  it('encrypts the server connection as each mode says; plaintext under disable', T, async () => {
    const expect: [string, boolean][] = [
      ['disable', false],
      ['allow', true],
      ['prefer', true],
      ['require', true],
      ['verify-ca', true],
      ['verify-full', true],
    ];
    for (const [mode, ssl] of expect) {
      const at = await proxy({ server_tls_sslmode: mode, server_tls_ca_file: C('ca.crt') });
      assert.equal(await serverSsl(at), ssl, `server_tls_sslmode ${mode}`);
    }
  });

  it(
    'psql through the proxy with server_tls_sslmode=require runs on an encrypted server connection; SHOW SERVERS shows it',
    T,
    async () => {
      const at = await proxy({ server_tls_sslmode: 'require' });
      const r = await psql(at, 'disable', ['-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()']);
      assert.equal(r.stdout.trim(), 't', r.stderr);
      const servers = await show(at, 'SERVERS');
      assert.equal(servers.length, 1);
      assert.match(String(servers[0]?.['tls']), /^TLSv1\.[23]\/[\w-]+\/(ECDH=\w+|DH=\d+)$/);
    },
  );

  it(
    'verify-full refuses a server certificate for another host name with a clear error; verify-ca accepts it',
    T,
    async () => {
      installServerCert(fx.pg.dataDir, 'wrong', C('wrong.crt'), C('wrong.key'));
      await setServerCert('wrong');
      try {
        const full = await proxy({ server_tls_sslmode: 'verify-full', server_tls_ca_file: C('ca.crt') });
        const err = await connectError(full);
        assert.equal(err.code, '08001', err.message);
        assert.match(
          err.message,
          /TLS to node "127\.0\.0\.1:\d+" \(127\.0\.0\.1:\d+\) failed \(server_tls_sslmode verify-full\): .*(altnames|Hostname)/,
        );
        const r = await psql(full, 'disable', ['-c', 'SELECT 1']);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /FATAL: .*TLS to node .* failed \(server_tls_sslmode verify-full\)/);
        const ca = await proxy({ server_tls_sslmode: 'verify-ca', server_tls_ca_file: C('ca.crt') });
        assert.equal(await serverSsl(ca), true);
      } finally {
        await setServerCert('server');
      }
    },
  );

  it('a server without SSL: prefer falls back to plaintext, require fails the client with 08001', T, async () => {
    await setServer({ ssl: 'off' });
    try {
      assert.equal(await serverSsl(await proxy({ server_tls_sslmode: 'prefer' })), false);
      const err = await connectError(await proxy({ server_tls_sslmode: 'require' }));
      assert.equal(err.code, '08001', err.message);
      assert.match(err.message, /failed \(server_tls_sslmode require\): the server does not support SSL/);
    } finally {
      await setServer({ ssl: 'on' });
    }
  });

  it('a CancelRequest reaches the server over TLS (server_tls_sslmode=verify-full)', T, async () => {
    const at = await proxy({ server_tls_sslmode: 'verify-full', server_tls_ca_file: C('ca.crt') });
    const c = await client(at);
    try {
      const keys = c as unknown as { processID: number; secretKey: number };
      const q = c.query('select pg_sleep(60)').then(
        () => null,
        (e: { code?: string }) => e.code,
      );
      for (;;) {
        const rows = await show(at, 'CLIENTS');
        if (rows.some((row) => row['remote_pid'] === keys.processID && row['state'] === 'active')) break;
      }
      const s = connect({ host: at.host, port: at.port }, () =>
        s.end(buildCancelRequest(keys.processID, keys.secretKey)),
      );
      await once(s, 'close');
      assert.equal(await q, '57014');
    } finally {
      await c.end();
    }
  });

  it('RELOAD with changed server_tls_sslmode reconnects the pool with the new mode', T, async () => {
    const file = join(fx.dir, 'proxy.yml');
    const yml = (mode: string) =>
      `listen: 127.0.0.1:0\nprimary: ${fx.pg.host}:${fx.pg.port}\nauth_type: trust\ndefault_pool_size: 1\nserver_tls_sslmode: ${mode}\n`;
    writeFileSync(file, yml('disable'));
    const { host, port, p } = await fx.start(loadProxyConfig(file), { configFile: file });
    const at = { host, port };
    assert.equal(await serverSsl(at), false);
    writeFileSync(file, yml('require'));
    p.reload();
    assert.equal(await serverSsl(at), true);
    // A file the proxy cannot read refuses the RELOAD and keeps the running settings.
    writeFileSync(file, yml('verify-full') + `server_tls_ca_file: ${C('missing.crt')}\n`);
    assert.throws(() => p.reload(), /server_tls_ca_file: cannot read ".*missing\.crt"/);
    assert.equal(await serverSsl(at), true);
  });
});

describe('client → proxy TLS (client_tls_sslmode)', () => {
  it('psql sslmode=require works, SHOW CLIENTS shows the TLS session, and plain clients show none', T, async () => {
    const at = await proxy(clientTls('require'));
    const r = await psql(at, 'require', ['-c', 'select 40 + 2']);
    assert.equal(r.stdout.trim(), '42', r.stderr);
    // psql checking the proxy's certificate against the CA, for 127.0.0.1
    const v = await psql(at, 'verify-full', ['-c', 'select 1'], { PGSSLROOTCERT: C('ca.crt') });
    assert.equal(v.stdout.trim(), '1', v.stderr);
    const rows = (await psql(at, 'require', ['-d', 'pgbouncer', '-c', 'SHOW CLIENTS'])).stdout
      .trim()
      .split('\n')
      .map((l) => l.split('|'));
    assert.equal(rows.length, 1);
    assert.match(rows[0]?.[17] ?? '', /^TLSv1\.[23]\/[\w-]+/);

    const plain = await proxy(clientTls('prefer'));
    const rows2 = await show(plain, 'CLIENTS');
    assert.equal(rows2.length, 1);
    assert.equal(rows2[0]?.['tls'], '');
  });

  it(
    'client_tls_sslmode=require refuses a plain StartupMessage with FATAL 28000 (psql sslmode=disable, node-postgres)',
    T,
    async () => {
      const at = await proxy(clientTls('require'));
      const r = await psql(at, 'disable', ['-c', 'select 1']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /FATAL: +SSL required/);
      const err = await connectError(at, { ssl: false });
      assert.equal(err.code, '28000');
      assert.match(err.message, /SSL required/);
    },
  );

  it('node-postgres with ssl: { rejectUnauthorized: false } works, and plain works under prefer', T, async () => {
    const at = await proxy(clientTls('prefer'));
    const c = await client(at, { ssl: { rejectUnauthorized: false } });
    assert.equal((await c.query('select 1 as x')).rows[0].x, 1);
    await c.end();
    const p = await client(at);
    assert.equal((await p.query('select 2 as x')).rows[0].x, 2);
    await p.end();
  });

  it('verify-ca demands a client certificate signed by client_tls_ca_file', T, async () => {
    const at = await proxy(clientTls('verify-ca'));
    const ssl = {
      ca: readFileSync(C('ca.crt')),
      cert: readFileSync(C('client.crt')),
      key: readFileSync(C('client.key')),
    };
    const c = await client(at, { ssl });
    assert.equal((await c.query('select 3 as x')).rows[0].x, 3);
    await c.end();
    // No certificate: the handshake itself fails.
    await connectError(at, { ssl: { ca: ssl.ca } });
    // A certificate from another CA: FATAL 28000 over the TLS session.
    const err = await connectError(at, {
      ssl: { ca: ssl.ca, cert: readFileSync(C('stranger.crt')), key: readFileSync(C('stranger.key')) },
    });
    assert.equal(err.code, '28000', err.message);
    assert.match(
      err.message,
      /client certificate not accepted \(client_tls_sslmode verify-ca\): UNABLE_TO_(VERIFY_LEAF_SIGNATURE|GET_ISSUER_CERT)/,
    );
  });

  it('both sides at once: TLS client, TLS server connection', T, async () => {
    const at = await proxy({
      ...clientTls('require'),
      server_tls_sslmode: 'verify-full',
      server_tls_ca_file: C('ca.crt'),
    });
    assert.equal(await serverSsl(at, { ssl: { ca: readFileSync(C('ca.crt')) } }), true);
  });

  it(
    'a garbage handshake after S closes that client only, with a log line naming it; another client keeps working',
    T,
    async () => {
      const lines: string[] = [];
      const at = await proxy(clientTls('require'), {
        log: createLogger({ format: 'json', write: (l) => lines.push(l) }),
      });
      const good = await client(at, { ssl: { rejectUnauthorized: false } });
      const s: Socket = connect({ host: at.host, port: at.port });
      s.on('error', () => {});
      await once(s, 'connect');
      s.write(buildSSLRequest());
      const [answer] = (await once(s, 'data')) as [Buffer];
      assert.equal(answer.toString(), 'S');
      // Not a TLS record (content type 0): OpenSSL gives up on the first header.
      s.write(Buffer.concat([Buffer.from([0x00, 0x03, 0x03, 0x00, 0x20]), Buffer.alloc(32, 0xa5)]));
      const port = s.localPort;
      await once(s, 'close');
      assert.ok(
        lines.some((l) => l.includes('PROXY_CLIENT_TLS_HANDSHAKE') && l.includes(`"client":"127.0.0.1:${port}"`)),
        lines.join('\n'),
      );
      assert.equal((await good.query('select 4 as x')).rows[0].x, 4);
      const next = await client(at, { ssl: { rejectUnauthorized: false } });
      assert.equal((await next.query('select 5 as x')).rows[0].x, 5);
      await next.end();
      await good.end();
    },
  );

  it('bytes sent after SSLRequest before the answer are refused with an ErrorResponse', T, async () => {
    const at = await proxy(clientTls('prefer'));
    const s = connect({ host: at.host, port: at.port });
    s.on('error', () => {});
    await once(s, 'connect');
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.write(Buffer.concat([buildSSLRequest(), buildStartupMessage({ user: 'postgres', database: 'postgres' })]));
    await once(s, 'close');
    const reply = Buffer.concat(got);
    assert.equal(String.fromCharCode(reply[0] ?? 0), 'E');
    assert.match(reply.toString('latin1'), /unencrypted data after an encryption request/);
  });
});
