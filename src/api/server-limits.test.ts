/**
 * The REST server's guards, each reproducing an attack on a real listener: unsafe endpoints without (or with
 * wrong) credentials, oversized and deeply nested bodies, connections trickling a body, and what a refused
 * request leaves in the log.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { clusterKeys, encodeJson } from '../dcs/layout.js';
import { createLogger } from '../lib/log.js';
import { CREDS, fixture } from './api-fixture.js';
import { credentialsMatch } from './auth.js';
import { jsonDepth, MAX_BODY } from './body.js';

const AUTH = `${CREDS.username}:${CREDS.password}`;
const keys = clusterKeys('t');

/** A raw request whose body is written as given (string or chunks), so sizes and framing are ours. */
function raw(
  port: number,
  method: string,
  path: string,
  body: string,
  headers: Record<string, string | number> = {},
): Promise<{ code: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const basic = (s: string) => 'Basic ' + Buffer.from(s).toString('base64');

describe('REST authentication', () => {
  it('every unsafe endpoint answers 401 without or with wrong credentials and changes nothing', async () => {
    await using f = await fixture({ auth: true });
    await f.store.put(
      keys.config,
      encodeJson({ ttl: 10, loop_wait: 1, retry_timeout: 3, postgresql: { parameters: {} } }),
    );
    await f.store.put(keys.leader, 'node1');
    const attack = { postgresql: { parameters: { archive_mode: 'on', archive_command: 'id > /tmp/owned; true' } } };
    const routes = [
      ['PATCH', '/config'],
      ['PUT', '/config'],
      ['POST', '/restart'],
      ['POST', '/reinitialize'],
      ['POST', '/reload'],
      ['POST', '/switchover'],
      ['POST', '/failover'],
      ['DELETE', '/switchover'],
      ['POST', '/failsafe'],
    ] as const;
    for (const [method, path] of routes) {
      for (const auth of [undefined, 'admin:wrong', 'nobody:s3cret', 'admin:s3cret:extra', 'admin']) {
        const r = await f.req(
          method,
          path,
          path === '/config' ? attack : { leader: 'node1', candidate: 'node2' },
          auth,
        );
        assert.equal(r.code, 401, `${method} ${path} with ${auth ?? 'no credentials'}: ${r.text}`);
      }
    }
    assert.doesNotMatch((await f.store.get(keys.config))?.value ?? '', /archive_command/);
    assert.equal(await f.store.get(keys.failover), undefined);
    assert.equal(f.agent.snapshot().memory.failsafeSeenAt, null);
    assert.equal((await f.req('POST', '/reload', {}, AUTH)).code, 202);
    assert.equal((await f.req('GET', '/patroni')).code, 200);
  });

  it('credentials: case-insensitive scheme, a colon in the password, nothing else', () => {
    const auth = { username: 'u', password: 'p:w' };
    assert.equal(credentialsMatch(basic('u:p:w'), auth), true);
    assert.equal(credentialsMatch(basic('u:p:w').replace('Basic', 'bAsIc'), auth), true);
    for (const h of [undefined, '', basic('u:p'), basic('u:p:w '), basic('U:p:w'), 'Bearer x', `${basic('u:p:w')}x`])
      assert.equal(credentialsMatch(h, auth), false, String(h));
    assert.equal(
      credentialsMatch(undefined, undefined),
      true,
      'no credentials configured: open (loopback-only, see restapi-rules)',
    );
  });

  it('refusals are logged with the client address, rate-limited, never with the password sent', async () => {
    const lines: string[] = [];
    let t = 1_000_000;
    const log = createLogger({ level: 'info', write: (l) => lines.push(l) });
    await using f = await fixture({ auth: true, log, now: () => t });
    for (let i = 0; i < 5; i++) await f.req('POST', '/restart', {}, 'admin:hunter2-guess');
    t += 11_000;
    await f.req('POST', '/restart', {});
    const refused = lines.filter((l) => l.includes('authentication failed'));
    assert.equal(refused.length, 2, refused.join('\n'));
    assert.match(refused[0] as string, /"client":"(::ffff:)?127\.0\.0\.1"/);
    assert.match(refused[1] as string, /"suppressed_since_last":4/);
    assert.ok(!lines.join('\n').includes('hunter2'), 'the password tried must not be logged');
    assert.ok(!lines.join('\n').includes(CREDS.password), 'the real password must not be logged');
  });
});

describe('REST request bounds', () => {
  it('413 for a body over the limit, declared or streamed, instead of a connection reset', async () => {
    await using f = await fixture({ auth: true });
    const big = JSON.stringify({ x: 'a'.repeat(MAX_BODY * 4) });
    const declared = await raw(f.port, 'PATCH', '/config', big, { authorization: basic(AUTH) });
    assert.equal(declared.code, 413, declared.text);
    assert.match(declared.text, /at most 65536/);
    const streamed = await raw(f.port, 'PATCH', '/config', big, {
      authorization: basic(AUTH),
      'transfer-encoding': 'chunked',
    });
    assert.equal(streamed.code, 413, streamed.text);
  });

  it('400 with a clear message for a 5,000-deep JSON body, not 500', async () => {
    await using f = await fixture({ auth: true });
    const deep = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000);
    const r = await raw(f.port, 'PATCH', '/config', deep, { authorization: basic(AUTH) });
    assert.equal(r.code, 400, r.text);
    assert.match(r.text, /nested 5000 levels deep; at most 32/);
    assert.equal(jsonDepth('{"a":"{{[[[","b":[1,{"c":2}]}'), 3, 'brackets inside strings do not count');
  });

  it('200 connections trickling a body are all closed by the server', async () => {
    await using f = await fixture({ auth: true });
    const head = `PATCH /config HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic(AUTH)}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"ttl":`;
    const closed = await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<string>((resolve) => {
            const s = connect({ host: '127.0.0.1', port: f.port });
            let answer = '';
            s.on('connect', () => s.write(head));
            const drip = setInterval(() => s.write(' '), 500);
            s.on('data', (d) => (answer += d.toString()));
            s.on('error', () => {});
            s.on('close', () => {
              clearInterval(drip);
              resolve(answer.split('\r\n')[0] ?? '');
            });
            // Only a safety net for a broken server; the assertion is that the server closed every connection.
            setTimeout(() => s.destroy(new Error('still open')), 30_000).unref();
          }),
      ),
    );
    const byAnswer = new Map<string, number>();
    for (const c of closed) byAnswer.set(c, (byAnswer.get(c) ?? 0) + 1);
    assert.deepEqual([...byAnswer.keys()], ['HTTP/1.1 408 Request Timeout'], JSON.stringify([...byAnswer]));
  });
});
