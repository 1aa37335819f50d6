import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { isProtocolError, ProtocolErrorCode } from '../errors.js';
import { saslprep } from './saslprep.js';
import {
  makeScramVerifier,
  parseScramVerifier,
  requireScramMechanism,
  ScramClient,
  ScramServer,
  scramSecretFromPassword,
} from './scram.js';

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e) => isProtocolError(e) && e.code === code);
}
const fixed = (s: string) => (): string => s;

/** RFC 7677 §3 (user "user", password "pencil"). */
const RFC = {
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

/** Verifiers PostgreSQL produced for "foo" and "bar" (pgbouncer/pgbouncer test/userlist.txt, scramuser1/2). */
const PG_FOO =
  'SCRAM-SHA-256$4096:D76gvGUVj9Z4DNiGoabOBg==$RukL0Xo3Ql/2F9FsD7mcQ3GATG2fD3PA71qY1JagGDs=:BhKUwyyivFm7Tq2jDJVXSVRbRDgTWyBilZKgg6DDuYU=';
const PG_BAR =
  'SCRAM-SHA-256$4096:BUYIT9YAsWf036OHLPfv2Q==$zuk7pzdEc5tvftsRIuwlStNxVc+wIE/xfDs7ahsKN0k=:Lov6mndE0DmlgtY60e1LyDsLctQyoH+Bvkm9K9njSa8=';

/** Runs a whole exchange in memory; throws what failed. */
function login(client: ScramClient, server: ScramServer): void {
  const serverFirst = server.serverFirst(client.clientFirst());
  const serverFinal = server.verifyClientFinal(client.onServerFirst(serverFirst));
  client.verifyServerFinal(serverFinal);
}

/** A server that has answered client-first "n,,n=,r=CLIENTNONCE" with server nonce "SERVERNONCE". */
function serverAfterFirst(): ScramServer {
  const server = ScramServer.fromVerifier(PG_FOO, fixed('SERVERNONCE'));
  server.serverFirst('n,,n=,r=CLIENTNONCE');
  return server;
}

describe('SCRAM-SHA-256 against RFC 7677', () => {
  it('client side produces the RFC messages and accepts the RFC server signature', () => {
    const client = new ScramClient('pencil', fixed(RFC.clientNonce), { username: 'user' });
    assert.equal(client.clientFirst(), RFC.clientFirst);
    assert.equal(client.onServerFirst(RFC.serverFirst), RFC.clientFinal);
    client.verifyServerFinal(RFC.serverFinal);
  });

  it('server side produces the RFC messages from a verifier', () => {
    const server = new ScramServer(scramSecretFromPassword('pencil', RFC.salt, 4096), fixed(RFC.serverNonce));
    assert.equal(server.serverFirst(RFC.clientFirst), RFC.serverFirst);
    assert.equal(server.verifyClientFinal(RFC.clientFinal), RFC.serverFinal);
  });
});

describe('SCRAM-SHA-256 with PostgreSQL verifiers', () => {
  it('makeScramVerifier reproduces what PostgreSQL stored, given the same salt', () => {
    for (const [verifier, password] of [
      [PG_FOO, 'foo'],
      [PG_BAR, 'bar'],
    ] as const) {
      const { salt, iterations } = parseScramVerifier(verifier);
      assert.equal(makeScramVerifier(password, salt, iterations), verifier);
    }
  });

  it('accepts the right password and refuses a wrong one with 28P01', () => {
    login(new ScramClient('foo'), ScramServer.fromVerifier(PG_FOO));
    assert.throws(
      () => login(new ScramClient('bar'), ScramServer.fromVerifier(PG_FOO)),
      (e) => isProtocolError(e) && e.code === ProtocolErrorCode.AuthFailed && e.sqlstate === '28P01',
    );
  });

  it('logs in to a server with the keys recovered from a client (pass-through), without the password', () => {
    const front = ScramServer.fromVerifier(PG_BAR);
    assert.equal(front.passThroughKeys, null);
    login(new ScramClient('bar'), front);
    const keys = front.passThroughKeys;
    assert.ok(keys);
    login(new ScramClient(keys), ScramServer.fromVerifier(PG_BAR));
    assert.throws(
      () => login(new ScramClient(keys), ScramServer.fromVerifier(PG_FOO)),
      (e) => isProtocolError(e),
    );
  });

  it('interoperates with the node-postgres SCRAM client', async () => {
    const sasl = createRequire(import.meta.url)('pg/lib/crypto/sasl.js') as {
      startSession(mechanisms: string[]): { response: string };
      continueSession(session: object, password: string, data: string): Promise<void>;
      finalizeSession(session: object, data: string): void;
    };
    for (const [password, ok] of [
      ['foo', true],
      ['nope', false],
    ] as const) {
      const server = ScramServer.fromVerifier(PG_FOO);
      const session = sasl.startSession(['SCRAM-SHA-256']);
      await sasl.continueSession(session, password, server.serverFirst(session.response));
      const final = (session as { response: string }).response;
      if (ok) sasl.finalizeSession(session, server.verifyClientFinal(final));
      else throwsCode(() => server.verifyClientFinal(final), ProtocolErrorCode.AuthFailed);
    }
  });

  it('a mock exchange for an unknown user looks normal and always fails', () => {
    const server = ScramServer.mock(Buffer.from('0123456789abcdef'), 4096, fixed('SN'));
    const client = new ScramClient('anything', fixed('CN'));
    assert.equal(server.serverFirst(client.clientFirst()), 'r=CNSN,s=MDEyMzQ1Njc4OWFiY2RlZg==,i=4096');
    throwsCode(
      () => server.verifyClientFinal(client.onServerFirst('r=CNSN,s=MDEyMzQ1Njc4OWFiY2RlZg==,i=4096')),
      ProtocolErrorCode.AuthFailed,
    );
  });
});

describe('SCRAM server refuses what PostgreSQL refuses', () => {
  it('channel binding, authzid, extensions and malformed client-first messages', () => {
    const first = (msg: string, code: string): void =>
      throwsCode(() => ScramServer.fromVerifier(PG_FOO).serverFirst(msg), code);
    first('p=tls-server-end-point,,n=,r=abc', ProtocolErrorCode.SaslUnsupported);
    first('n,a=admin,n=,r=abc', ProtocolErrorCode.SaslUnsupported);
    first('n,,m=ext,n=,r=abc', ProtocolErrorCode.SaslUnsupported);
    first('x,,n=,r=abc', ProtocolErrorCode.SaslMalformed);
    first('n,,r=abc', ProtocolErrorCode.SaslMalformed);
    first('n,,n=,r=', ProtocolErrorCode.SaslMalformed);
    first('n,,n=,r=a b', ProtocolErrorCode.SaslMalformed);
    first('', ProtocolErrorCode.SaslMalformed);
  });

  it('accepts "y,," (client could bind, we do not offer it) and then requires c=eSws', () => {
    const server = ScramServer.fromVerifier(PG_FOO, fixed('S'));
    server.serverFirst('y,,n=,r=C');
    throwsCode(
      () => server.verifyClientFinal('c=biws,r=CS,p=' + Buffer.alloc(32).toString('base64')),
      ProtocolErrorCode.SaslMalformed,
    );
    const again = ScramServer.fromVerifier(PG_FOO, fixed('S'));
    again.serverFirst('y,,n=,r=C');
    throwsCode(
      () => again.verifyClientFinal('c=eSws,r=CS,p=' + Buffer.alloc(32).toString('base64')),
      ProtocolErrorCode.AuthFailed,
    );
  });

  it('malformed client-final messages', () => {
    const proof = Buffer.alloc(32).toString('base64');
    const final = (msg: string, code: string): void => {
      throwsCode(() => serverAfterFirst().verifyClientFinal(msg), code);
    };
    final(`c=biws,r=CLIENTNONCEother,p=${proof}`, ProtocolErrorCode.SaslNonceMismatch);
    final(`c=eSws,r=CLIENTNONCESERVERNONCE,p=${proof}`, ProtocolErrorCode.SaslMalformed);
    final('c=biws,r=CLIENTNONCESERVERNONCE', ProtocolErrorCode.SaslMalformed);
    final('c=biws,r=CLIENTNONCESERVERNONCE,p=AAAA', ProtocolErrorCode.SaslMalformed);
    final('c=biws,r=CLIENTNONCESERVERNONCE,p=%%%%', ProtocolErrorCode.SaslMalformed);
    final(`c=biws,r=CLIENTNONCESERVERNONCE,p=${proof},x=1`, ProtocolErrorCode.SaslMalformed);
    final(`c=biws,r=CLIENTNONCESERVERNONCE,p=${proof},p=${proof}`, ProtocolErrorCode.SaslMalformed);
    final(`c=biws,r=CLIENTNONCESERVERNONCE,p=${proof}`, ProtocolErrorCode.AuthFailed);
  });

  it('only SCRAM-SHA-256 is an acceptable mechanism', () => {
    requireScramMechanism('SCRAM-SHA-256');
    throwsCode(() => requireScramMechanism('SCRAM-SHA-256-PLUS'), ProtocolErrorCode.SaslUnsupported);
  });

  it('methods called out of order are a caller bug (plain Error)', () => {
    const server = ScramServer.fromVerifier(PG_FOO);
    assert.throws(
      () => server.verifyClientFinal('c=biws'),
      (e) => e instanceof Error && !isProtocolError(e),
    );
  });
});

describe('SCRAM client refuses a dishonest or hostile server', () => {
  const client = (): ScramClient => {
    const c = new ScramClient('foo', fixed('CN'), { maxIterations: 10_000 });
    c.clientFirst();
    return c;
  };
  it('nonce, salt and iteration checks', () => {
    throwsCode(() => client().onServerFirst('r=XXSN,s=c2FsdA==,i=4096'), ProtocolErrorCode.SaslNonceMismatch);
    throwsCode(() => client().onServerFirst('r=CN,s=c2FsdA==,i=4096'), ProtocolErrorCode.SaslNonceMismatch);
    throwsCode(() => client().onServerFirst('r=CNSN,s=c2Fs!A==,i=4096'), ProtocolErrorCode.SaslMalformed);
    throwsCode(() => client().onServerFirst('r=CNSN,s=c2FsdA==,i=0'), ProtocolErrorCode.SaslMalformed);
    throwsCode(() => client().onServerFirst('r=CNSN,s=c2FsdA==,i=10001'), ProtocolErrorCode.SaslIterations);
    throwsCode(() => client().onServerFirst('m=x,r=CNSN,s=c2FsdA==,i=1'), ProtocolErrorCode.SaslUnsupported);
    throwsCode(() => client().onServerFirst('garbage'), ProtocolErrorCode.SaslMalformed);
  });

  it('server-final: an error attribute or a wrong signature', () => {
    const c1 = client();
    c1.onServerFirst('r=CNSN,s=c2FsdA==,i=1');
    throwsCode(() => c1.verifyServerFinal('e=invalid-proof'), ProtocolErrorCode.AuthFailed);
    const c2 = client();
    c2.onServerFirst('r=CNSN,s=c2FsdA==,i=1');
    throwsCode(
      () => c2.verifyServerFinal('v=' + Buffer.alloc(32).toString('base64')),
      ProtocolErrorCode.ServerSignature,
    );
  });
});

describe('verifiers and SASLprep', () => {
  it('parseScramVerifier rejects anything else with AUTH_BAD_SECRET', () => {
    for (const bad of [
      'md5ab8b744ff66bee42dc47bae34ca17959',
      'SCRAM-SHA-256$0:c2FsdA==$' + PG_FOO.split('$')[2],
      'SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA',
      'SCRAM-SHA-256$4096:c2Fs!A==$' + PG_FOO.split('$')[2],
      PG_FOO + 'x',
    ]) {
      throwsCode(() => parseScramVerifier(bad), ProtocolErrorCode.BadSecret);
    }
  });

  it('SASLprep follows RFC 4013 examples and PostgreSQL fallbacks', () => {
    assert.equal(saslprep('I\u00ADX'), 'IX'); // soft hyphen mapped to nothing
    assert.equal(saslprep('\u00AA'), 'a'); // NFKC
    assert.equal(saslprep('\u2168'), 'IX'); // NFKC
    assert.equal(saslprep('a\u00A0b'), 'a b'); // non-ASCII space
    assert.equal(saslprep('ctl\u0007'), 'ctl\u0007'); // pure ASCII: unchanged
    assert.equal(saslprep('\u00AA\u0007'), '\u00AA\u0007'); // prohibited after mapping: the original is used
    assert.equal(saslprep('\uE000x'), '\uE000x'); // private use: prohibited
    const salt = Buffer.alloc(16, 1);
    assert.equal(makeScramVerifier('I\u00ADX', salt, 16), makeScramVerifier('IX', salt, 16));
  });
});
