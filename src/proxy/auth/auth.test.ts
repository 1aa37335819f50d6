import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildPasswordMessage,
  buildSASLInitialResponse,
  buildSASLResponse,
  type Frame,
  Framer,
  makeScramVerifier,
  md5Response,
  md5Secret,
  parseAuthentication,
  ScramClient,
} from '../../protocol/index.js';
import { parseAuthFile, secretKind } from './auth-file.js';
import { ClientAuth, ScramSecretCache, type AuthStep } from './client-auth.js';
import { ProxyError } from '../errors.js';

const rand = { salt4: () => Buffer.from([1, 2, 3, 4]), nonce: () => 'servernonce', processSecret: Buffer.alloc(32, 7) };
const cache = new ScramSecretCache(rand.processSecret);

function auth(step: AuthStep) {
  const f = new Framer();
  f.push(step.send);
  const out = [];
  for (let x: Frame | undefined = f.next(); x; x = f.next()) out.push(parseAuthentication(x.payload));
  return out;
}

const payload = (msg: Buffer): Buffer => msg.subarray(5);

describe('auth file', () => {
  it('parses pgBouncer userlist.txt lines', () => {
    const { users, problems } = parseAuthFile('"alice" "pw"\n;comment\n"bo""b" "md5' + 'a'.repeat(32) + '"\n"broken\n');
    assert.equal(users.get('alice')?.kind, 'plain');
    assert.equal(users.get('bo"b')?.kind, 'md5');
    assert.equal(problems.length, 1);
    assert.equal(secretKind(makeScramVerifier('x', Buffer.alloc(16))), 'scram');
  });
});

describe('client authentication', () => {
  it('md5 with a plaintext secret: right password passes, wrong fails with 28P01', () => {
    const a = new ClientAuth('md5', 'alice', { user: 'alice', secret: 'pw', kind: 'plain' }, true, rand, cache);
    const first = a.start();
    assert.equal(auth(first)[0]?.kind, 'md5');
    const done = a.step(payload(buildPasswordMessage(md5Response('alice', 'pw', Buffer.from([1, 2, 3, 4])))));
    assert.equal(done.kind, 'done');
    const b = new ClientAuth(
      'md5',
      'alice',
      { user: 'alice', secret: md5Secret('alice', 'pw'), kind: 'md5' },
      true,
      rand,
      cache,
    );
    b.start();
    assert.throws(
      () => b.step(payload(buildPasswordMessage(md5Response('alice', 'nope', Buffer.from([1, 2, 3, 4]))))),
      (e) => e instanceof ProxyError && e.sqlstate === '28P01',
    );
  });

  it('SCRAM with a stored verifier completes and yields pass-through keys', () => {
    const verifier = makeScramVerifier('s3cret', Buffer.alloc(16, 9));
    const a = new ClientAuth(
      'scram-sha-256',
      'bob',
      { user: 'bob', secret: verifier, kind: 'scram' },
      true,
      rand,
      cache,
    );
    assert.equal(auth(a.start())[0]?.kind, 'sasl');
    const client = new ScramClient('s3cret', () => 'clientnonce');
    const cont = a.step(payload(buildSASLInitialResponse('SCRAM-SHA-256', client.clientFirst())));
    const serverFirst = auth(cont)[0];
    assert.equal(serverFirst?.kind, 'sasl-continue');
    const final = a.step(payload(buildSASLResponse(client.onServerFirst((serverFirst as { data: Buffer }).data))));
    assert.equal(final.kind, 'done');
    const [fin, ok] = auth(final);
    client.verifyServerFinal((fin as { data: Buffer }).data);
    assert.equal(ok?.kind, 'ok');
    assert.ok(a.passThroughKeys);
  });

  it('SCRAM: unknown users and wrong passwords both fail with 28P01', () => {
    for (const secret of [undefined, { user: 'carol', secret: 'right', kind: 'plain' as const }]) {
      const a = new ClientAuth('scram-sha-256', 'carol', secret, true, rand, cache);
      a.start();
      const client = new ScramClient('wrong', () => 'cn');
      const cont = auth(a.step(payload(buildSASLInitialResponse('SCRAM-SHA-256', client.clientFirst()))))[0] as {
        data: Buffer;
      };
      assert.throws(
        () => a.step(payload(buildSASLResponse(client.onServerFirst(cont.data)))),
        (e) => e instanceof ProxyError && e.sqlstate === '28P01',
      );
    }
  });

  it('trust: with an auth file the user must exist', () => {
    assert.equal(new ClientAuth('trust', 'x', undefined, false, rand, cache).start().kind, 'done');
    assert.throws(
      () => new ClientAuth('trust', 'x', undefined, true, rand, cache).start(),
      (e) => e instanceof ProxyError && e.sqlstate === '28P01',
    );
  });
});
