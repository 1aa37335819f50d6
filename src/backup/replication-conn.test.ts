import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { makeCa, makeCert } from '../lib/certs.js';
import {
  buildAuthenticationCleartextPassword,
  buildAuthenticationMD5Password,
  buildAuthenticationOk,
  buildAuthenticationSASL,
  buildAuthenticationSASLContinue,
  buildAuthenticationSASLFinal,
  buildBackendKeyData,
  buildCommandComplete,
  buildDataRow,
  buildErrorResponse,
  buildParameterStatus,
  buildReadyForQuery,
  buildRowDescription,
  type Frame,
  Framer,
  FramerMode,
  makeScramVerifier,
  md5Response,
  parsePasswordMessage,
  parseQuery,
  parseSASLInitialResponse,
  parseSASLResponse,
  parseStartup,
  ProtocolCode,
  ScramServer,
  TxStatus,
} from '../protocol/index.js';
import { type ConnectOptions, connectPostgres, ReplicationError } from './replication-conn.js';

/** What the fake server does with one connection; `next` waits for the client's next message. */
interface Peer {
  next(): Promise<Frame>;
  send(...msgs: Buffer[]): void;
  sock: Socket;
}

/**
 * A loopback (or Unix-socket) server running `script` per connection. With `tls`, the first packet (SSLRequest) is
 * answered 'S' and the script talks over the server side of a TLS session.
 */
async function fakeServer(
  script: (p: Peer) => Promise<void>,
  where: { path?: string; tls?: SecureContext } = {},
): Promise<{ port: number; server: Server; errors: unknown[] } & AsyncDisposable> {
  const errors: unknown[] = [];
  const serve = (sock: Socket): void => {
    const framer = new Framer({ mode: FramerMode.Startup });
    const queue: Frame[] = [];
    let wake: (() => void) | null = null;
    sock.on('data', (b: Buffer) => {
      framer.push(b);
      for (let f = framer.next(); f !== undefined; f = framer.next())
        queue.push(new (f.constructor as typeof Frame)(f.type, f.length, Buffer.from(f.raw), 0, f.headerSize));
      wake?.();
    });
    sock.on('error', () => undefined);
    const peer: Peer = {
      sock,
      send: (...m) => void sock.write(Buffer.concat(m)),
      next: async () => {
        while (queue.length === 0) await new Promise<void>((r) => (wake = r));
        return queue.shift() as Frame;
      },
    };
    script(peer).then(
      () => sock.end(),
      (e) => {
        errors.push(e);
        sock.destroy();
      },
    );
  };
  const server = createServer((sock) => {
    const context = where.tls;
    if (!context) return serve(sock);
    sock.on('error', () => undefined);
    sock.once('data', () => {
      sock.write('S');
      serve(new TLSSocket(sock, { isServer: true, secureContext: context }));
    });
  });
  await new Promise<void>((r) => (where.path ? server.listen(where.path, r) : server.listen(0, '127.0.0.1', r)));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { port, server, errors, [Symbol.asyncDispose]: async () => void server.close() };
}

const READY = [
  buildParameterStatus('server_version', '15.8'),
  buildBackendKeyData(42, 7),
  buildReadyForQuery(TxStatus.Idle),
];

/** Reads the StartupMessage (answering 'N' to an SSLRequest first) and returns its parameters. */
async function startup(p: Peer): Promise<Map<string, string>> {
  let f = await p.next();
  if (f.payload.readInt32BE(0) === ProtocolCode.SSLRequest) {
    p.send(Buffer.from('N'));
    f = await p.next();
  }
  const s = parseStartup(f.payload);
  assert.equal(s.kind, 'startup');
  return new Map(s.params);
}

/** Answers simple queries: SELECT → one row; anything else → an error 42601. */
async function serveQueries(p: Peer): Promise<void> {
  for (;;) {
    const f = await p.next();
    if (f.type === 0x58) return; // Terminate
    const sql = parseQuery(f.payload);
    if (sql.startsWith('SELECT'))
      p.send(
        buildRowDescription([{ name: 'a' }, { name: 'b' }]),
        buildDataRow(['x', null]),
        buildCommandComplete('SELECT 1'),
        buildReadyForQuery(TxStatus.Idle),
      );
    else
      p.send(
        buildErrorResponse({ severity: 'ERROR', sqlstate: '42601', message: 'syntax error' }),
        buildReadyForQuery(TxStatus.Idle),
      );
  }
}

const opts = (port: number, more: Partial<ConnectOptions> = {}): ConnectOptions => ({
  host: '127.0.0.1',
  port,
  user: 'rep',
  connectTimeoutMs: 3000,
  ...more,
});

async function rejectsWith(p: Promise<unknown>, code: string, sqlstate = ''): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof ReplicationError, String(e));
    assert.equal(e.code, code, e.message);
    assert.equal(e.sqlstate, sqlstate);
    return true;
  });
}

let certDir = '';
const certs = { ca: '', otherCa: '', good: { cert: '', key: '' }, other: { cert: '', key: '' } };
before(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'pgkeel-repl-tls-'));
  const ca = await makeCa(certDir);
  const otherCa = await makeCa(join(certDir, 'other'), 'ca', 'someone else');
  certs.ca = ca.cert;
  certs.otherCa = otherCa.cert;
  certs.good = await makeCert(certDir, ca, 'server');
  certs.other = await makeCert(certDir, ca, 'elsewhere', { hosts: ['db.example.org'] });
});
after(() => rmSync(certDir, { recursive: true, force: true }));

describe('connectPostgres', () => {
  it('trust: sends replication=database, records parameters, runs queries (rows as text, errors typed, still usable)', async () => {
    let params = new Map<string, string>();
    await using srv = await fakeServer(async (p) => {
      params = await startup(p);
      p.send(buildAuthenticationOk(), ...READY);
      await serveQueries(p);
    });
    const conn = await connectPostgres(opts(srv.port, { replication: 'database', applicationName: 'pgkeel-backup' }));
    assert.equal(params.get('replication'), 'database');
    assert.equal(params.get('database'), 'rep', 'database defaults to the user, as libpq');
    assert.equal(params.get('application_name'), 'pgkeel-backup');
    assert.equal(conn.parameters.get('server_version'), '15.8');
    assert.equal(conn.backendPid, 42);
    assert.deepEqual(await conn.query('SELECT a, b'), [{ columns: ['a', 'b'], rows: [['x', null]], tag: 'SELECT 1' }]);
    await rejectsWith(conn.query('BOGUS'), 'REPL_SERVER_ERROR', '42601');
    assert.deepEqual((await conn.query('SELECT again'))[0]?.rows, [['x', null]]);
    conn.close();
    assert.deepEqual(srv.errors, []);
  });

  it('cleartext and md5 passwords', async () => {
    for (const method of ['cleartext', 'md5'] as const) {
      const salt = Buffer.from([1, 2, 3, 4]);
      await using srv = await fakeServer(async (p) => {
        await startup(p);
        p.send(method === 'md5' ? buildAuthenticationMD5Password(salt) : buildAuthenticationCleartextPassword());
        const pw = parsePasswordMessage((await p.next()).payload);
        const good = method === 'md5' ? md5Response('rep', 'secret', salt) : 'secret';
        if (pw !== good)
          return void p.send(buildErrorResponse({ severity: 'FATAL', sqlstate: '28P01', message: 'bad password' }));
        p.send(buildAuthenticationOk(), ...READY);
        await serveQueries(p);
      });
      const conn = await connectPostgres(opts(srv.port, { password: 'secret' }));
      conn.close();
      await rejectsWith(connectPostgres(opts(srv.port, { password: 'wrong' })), 'REPL_SERVER_ERROR', '28P01');
      await rejectsWith(connectPostgres(opts(srv.port)), 'REPL_AUTH', '28P01');
    }
  });

  it('SCRAM-SHA-256, and a server that cannot prove it knows the secret is refused', async () => {
    const verifier = makeScramVerifier('scram-pw', Buffer.alloc(16, 9), 4096);
    for (const ok of [true, false]) {
      await using srv = await fakeServer(async (p) => {
        await startup(p);
        p.send(buildAuthenticationSASL(['SCRAM-SHA-256']));
        const s = ScramServer.fromVerifier(verifier);
        const first = parseSASLInitialResponse((await p.next()).payload);
        p.send(buildAuthenticationSASLContinue(s.serverFirst(first.data ?? Buffer.alloc(0))));
        const final = s.verifyClientFinal(parseSASLResponse((await p.next()).payload));
        // A server that does not hold the secret cannot compute ServerSignature.
        const sig = ok ? final : `v=${Buffer.alloc(32, 1).toString('base64')}`;
        p.send(buildAuthenticationSASLFinal(sig), buildAuthenticationOk(), ...READY);
        await serveQueries(p);
      });
      const attempt = connectPostgres(opts(srv.port, { password: 'scram-pw' }));
      if (ok) (await attempt).close();
      else await rejectsWith(attempt, 'REPL_AUTH', '08P01');
    }
  });

  it('a FATAL during login is REPL_SERVER_ERROR with its SQLSTATE (no pg_hba entry: 28000)', async () => {
    await using srv = await fakeServer(async (p) => {
      await startup(p);
      p.send(buildErrorResponse({ severity: 'FATAL', sqlstate: '28000', message: 'no pg_hba.conf entry' }));
    });
    await rejectsWith(connectPostgres(opts(srv.port)), 'REPL_SERVER_ERROR', '28000');
  });

  it('sslmode: prefer falls back to plaintext on N, require refuses it, disable sends no SSLRequest', async () => {
    let sawSslRequest = false;
    await using srv = await fakeServer(async (p) => {
      const f = await p.next();
      sawSslRequest = f.payload.readInt32BE(0) === ProtocolCode.SSLRequest;
      if (sawSslRequest) {
        p.send(Buffer.from('N'));
        await p.next();
      }
      p.send(buildAuthenticationOk(), ...READY);
      await serveQueries(p);
    });
    (await connectPostgres(opts(srv.port))).close();
    assert.equal(sawSslRequest, true);
    await rejectsWith(connectPostgres(opts(srv.port, { sslmode: 'require' })), 'REPL_TLS');
    (await connectPostgres(opts(srv.port, { sslmode: 'disable' }))).close();
    assert.equal(sawSslRequest, false);
  });

  it('TLS: verify-full checks the chain and the host name, verify-ca the chain, require neither', async () => {
    const good = createSecureContext({ cert: readFileSync(certs.good.cert), key: readFileSync(certs.good.key) });
    const wrongHost = createSecureContext({ cert: readFileSync(certs.other.cert), key: readFileSync(certs.other.key) });
    const script = async (p: Peer): Promise<void> => {
      await startup(p);
      p.send(buildAuthenticationOk(), ...READY);
      await serveQueries(p);
    };
    await using srv = await fakeServer(script, { tls: good });
    await using misnamed = await fakeServer(script, { tls: wrongHost });
    const conn = await connectPostgres(opts(srv.port, { sslmode: 'verify-full', sslrootcert: certs.ca }));
    assert.deepEqual((await conn.query('SELECT over tls'))[0]?.rows, [['x', null]]);
    conn.close();
    await rejectsWith(
      connectPostgres(opts(srv.port, { sslmode: 'verify-ca', sslrootcert: certs.otherCa })),
      'REPL_TLS',
    );
    (await connectPostgres(opts(srv.port, { sslmode: 'require', sslrootcert: certs.otherCa }))).close();
    await rejectsWith(
      connectPostgres(opts(misnamed.port, { sslmode: 'verify-full', sslrootcert: certs.ca })),
      'REPL_TLS',
    );
    (await connectPostgres(opts(misnamed.port, { sslmode: 'verify-ca', sslrootcert: certs.ca }))).close();
    await rejectsWith(
      connectPostgres(opts(srv.port, { sslmode: 'verify-full', sslrootcert: '/nonexistent' })),
      'REPL_TLS',
    );
  });

  it('connects to a Unix socket in a directory (no TLS there)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-sock-'));
    try {
      let first = 0;
      await using srv = await fakeServer(
        async (p) => {
          const f = await p.next();
          first = f.payload.readInt32BE(0);
          p.send(buildAuthenticationOk(), ...READY);
          await serveQueries(p);
        },
        { path: join(dir, '.s.PGSQL.6543') },
      );
      assert.ok(srv.server.listening);
      const conn = await connectPostgres({ host: dir, port: 6543, user: 'rep', sslmode: 'require' });
      assert.deepEqual((await conn.query('SELECT 1'))[0]?.tag, 'SELECT 1');
      conn.close();
      assert.equal(first, ProtocolCode.V3_0, 'a StartupMessage first, never an SSLRequest');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('REPL_CONNECT when nothing listens, REPL_CONNECT on timeout, REPL_ABORTED on abort, REPL_CONNECTION_LOST on a close', async () => {
    const port = await (async () => {
      await using srv = await fakeServer(async () => undefined);
      return srv.port;
    })();
    await rejectsWith(connectPostgres(opts(port)), 'REPL_CONNECT');
    await using silent = await fakeServer(() => new Promise(() => undefined));
    await rejectsWith(connectPostgres(opts(silent.port, { connectTimeoutMs: 100 })), 'REPL_CONNECT');
    const ac = new AbortController();
    const p = connectPostgres(opts(silent.port, { signal: ac.signal }));
    setTimeout(() => ac.abort(), 20);
    await rejectsWith(p, 'REPL_ABORTED');
    await using closer = await fakeServer(async (p2) => {
      await startup(p2);
    });
    await rejectsWith(connectPostgres(opts(closer.port)), 'REPL_CONNECTION_LOST');
  });
});
