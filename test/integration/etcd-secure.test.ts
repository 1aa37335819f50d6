/**
 * EtcdStore against a real etcd with every protection on: https with a CA, client certificates required
 * (--client-cert-auth), authentication enabled by `ensureEtcdAuth` (root + a `pgkeel` user whose role may only
 * read and write its prefixes), and short-lived tokens (--auth-token-ttl 2) so re-authentication happens.
 * Finding 1 of issue 8: an unauthenticated client could write the cluster's `config` key; here it cannot.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { sleep } from '../helpers/wait.js';
import { EtcdStore, type EtcdStoreOptions } from '../../src/dcs/etcd.js';
import { ensureEtcdAuth } from '../../src/dcs/etcd-auth-setup.js';
import { storeContract } from '../../src/dcs/store.contract.js';
import { StoreError, type WatchEvent } from '../../src/dcs/store.js';
import { makeCa, makeCert } from '../../src/lib/certs.js';
import { startEtcd, type RunningEtcd } from '../helpers/etcd.js';
import { tempDir } from '../helpers/tmp.js';

const TIMEOUT_MS = 3000;
const TOKEN_TTL_S = 2;
/** Idle long enough for a token to be gone (etcd checks simple-token expiry about every second). */
const PAST_TTL_MS = TOKEN_TTL_S * 1000 + 2500;

const rootPassword = randomBytes(18).toString('base64url');
const password = randomBytes(18).toString('base64url');
const wrongPassword = randomBytes(18).toString('base64url');
const ALL_PASSWORDS = [rootPassword, password, wrongPassword];
/** Every error message the test saw, grepped for passwords at the end along with etcd's log. */
const messages: string[] = [];

function isAuthError(...mentions: string[]) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    messages.push(err.message);
    assert.equal(err.code, 'DCS_AUTH', err.message);
    for (const m of mentions) assert.ok(err.message.includes(m), `"${err.message}" should mention ${m}`);
    return true;
  };
}

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

describe('EtcdStore with https, client certificates and etcd authentication', () => {
  let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
  let etcd: RunningEtcd | undefined;
  let tls: { ca: string; cert: string; key: string } = { ca: '', cert: '', key: '' };
  let logFile = '';
  const endpoint = (): string => {
    assert.ok(etcd, 'etcd did not start');
    return etcd.endpoint;
  };
  const opts = (extra: Partial<EtcdStoreOptions> = {}): EtcdStoreOptions => ({
    hosts: [endpoint()],
    requestTimeoutMs: TIMEOUT_MS,
    protocol: 'https',
    tls,
    username: 'pgkeel',
    password,
    ...extra,
  });

  before(async () => {
    dir = await tempDir('etcd-secure');
    const certs = join(dir.path, 'certs');
    const ca = await makeCa(certs);
    const server = await makeCert(certs, ca, 'etcd');
    // No CN: etcd 3.4's gateway refuses client certificates that have one when --client-cert-auth is on.
    const client = await makeCert(certs, ca, 'pgkeel', { commonName: '' });
    tls = {
      ca: readFileSync(ca.cert, 'utf8'),
      cert: readFileSync(client.cert, 'utf8'),
      key: readFileSync(client.key, 'utf8'),
    };
    logFile = join(dir.path, 'etcd.log');
    etcd = await startEtcd(dir.path, {
      tls: { server: { cert: server.cert, key: server.key, ca: ca.cert, clientCertAuth: true }, client: tls },
      authTokenTtlSeconds: TOKEN_TTL_S,
      logFile,
    });
    const target = { endpoint: etcd.endpoint, protocol: 'https' as const, tls, timeoutMs: TIMEOUT_MS };
    const plan = { rootPassword, username: 'pgkeel', password, prefixes: ['/service/', '/pgkeel-contract/'] };
    assert.equal(await ensureEtcdAuth(target, plan), 'enabled');
    // A resumed cluster: the second run finds the user able to log in and changes nothing.
    assert.equal(await ensureEtcdAuth(target, plan), 'already');
  });
  after(async () => {
    await etcd?.stop();
    await dir?.[Symbol.asyncDispose]();
  });

  storeContract('EtcdStore (https + client certificate + user)', async () => {
    const store = new EtcdStore(opts());
    return { store, advance: async (ms: number) => void (await sleep(ms)), [Symbol.asyncDispose]: () => store.close() };
  });

  it('refuses a wrong password with DCS_AUTH naming the endpoint and the user, not the password', async () => {
    await using store = new EtcdStore(opts({ password: wrongPassword }));
    await assert.rejects(store.get('/service/batman/config'), isAuthError(endpoint(), '"pgkeel"'));
    assert.ok(!messages.at(-1)?.includes(wrongPassword));
  });

  it('refuses a user etcd does not know with DCS_AUTH', async () => {
    await using store = new EtcdStore(opts({ username: 'nosuchuser' }));
    await assert.rejects(store.put('/service/batman/config', '{}'), isAuthError(endpoint(), '"nosuchuser"'));
  });

  it("finding 1: a client without credentials cannot write the cluster's config key (it could before)", async () => {
    await using anonymous = new EtcdStore({
      hosts: [endpoint()],
      requestTimeoutMs: TIMEOUT_MS,
      protocol: 'https',
      tls,
    });
    const attack = JSON.stringify({
      postgresql: { parameters: { archive_mode: 'on', archive_command: 'id > /tmp/pwned; true' } },
    });
    await assert.rejects(
      anonymous.put('/service/batman/config', attack),
      isAuthError(endpoint(), 'requires authentication'),
    );
    await assert.rejects(anonymous.getPrefix('/service/'), isAuthError(endpoint()));
    await using pgkeel = new EtcdStore(opts());
    assert.equal(await pgkeel.get('/service/batman/config'), undefined, 'the attack wrote nothing');
  });

  it('the pgkeel user may not touch keys outside its prefixes', async () => {
    await using store = new EtcdStore(opts());
    await assert.rejects(store.put('/other/x', 'y'), isAuthError(endpoint(), 'denied user "pgkeel"'));
  });

  it('as an unprivileged local user, neither plain http nor https without a client certificate gets an answer', async () => {
    const url = `https://${endpoint()}/v3/kv/put`;
    const body = JSON.stringify({
      key: Buffer.from('/service/batman/config').toString('base64'),
      value: Buffer.from('{}').toString('base64'),
    });
    const noCert = await run('runuser', [
      '-u',
      'nobody',
      '--',
      'curl',
      '-sk',
      '--max-time',
      '5',
      '-X',
      'POST',
      url,
      '-d',
      body,
    ]);
    assert.notEqual(
      noCert.code,
      0,
      `curl without a client certificate should fail the TLS handshake, got: ${noCert.out}`,
    );
    const plain = await run('runuser', [
      '-u',
      'nobody',
      '--',
      'curl',
      '-s',
      '--max-time',
      '5',
      '-X',
      'POST',
      `http://${endpoint()}/v3/kv/put`,
      '-d',
      body,
    ]);
    assert.ok(plain.code !== 0 || !/"header"/.test(plain.out), `plain http must not be served: ${plain.out}`);
    // The same from Node: https with the CA but no certificate fails at the handshake, not with an etcd answer.
    await using store = new EtcdStore({
      hosts: [endpoint()],
      requestTimeoutMs: TIMEOUT_MS,
      protocol: 'https',
      tls: { ca: tls.ca },
      username: 'pgkeel',
      password,
    });
    await assert.rejects(
      store.get('/service/x'),
      (e: unknown) => e instanceof StoreError && e.code === 'DCS_UNAVAILABLE',
    );
  });

  it("a certificate from another CA is refused (the store checks the member's certificate)", async () => {
    assert.ok(dir);
    const other = await makeCa(join(dir.path, 'other'), 'other-ca', 'another CA');
    await using store = new EtcdStore(opts({ tls: { ...tls, ca: readFileSync(other.cert, 'utf8') } }));
    await assert.rejects(
      store.get('/service/x'),
      (e: unknown) => e instanceof StoreError && e.code === 'DCS_UNAVAILABLE' && /certificate/i.test(e.message),
    );
  });

  it('re-authenticates once when its token has expired (etcd --auth-token-ttl), for calls and for new watches', async () => {
    // The raw token really expires in this setup…
    const token = await rawToken(endpoint(), tls);
    await using store = new EtcdStore(opts());
    await store.put('/service/expiry/a', '1');
    await sleep(PAST_TTL_MS);
    assert.match(await rawPut(endpoint(), tls, token), /invalid auth token/);
    // …and the store, whose token is as old, carries on.
    assert.equal((await store.get('/service/expiry/a'))?.value, '1');
    await sleep(PAST_TTL_MS);
    const events: WatchEvent[] = [];
    const errors: Error[] = [];
    const snap = await store.getPrefix('/service/expiry/');
    await sleep(PAST_TTL_MS);
    const watch = store.watchPrefix('/service/expiry/', snap.revision + 1, {
      onEvents: (e) => void events.push(...e),
      onError: (e) => void errors.push(e),
    });
    try {
      await sleep(300);
      await store.put('/service/expiry/b', '2');
      await until(() => events.length > 0 || errors.length > 0);
      assert.deepEqual(
        errors.map((e) => e.message),
        [],
      );
      assert.deepEqual(
        events.map((e) => (e.type === 'put' ? `${e.kv.key}=${e.kv.value}` : e.key)),
        ['/service/expiry/b=2'],
      );
    } finally {
      await watch.close();
    }
  });

  it('an established watch keeps delivering after its token expired and the store re-authenticated', async () => {
    await using store = new EtcdStore(opts());
    const snap = await store.getPrefix('/service/longwatch/');
    const events: WatchEvent[] = [];
    const errors: Error[] = [];
    const watch = store.watchPrefix('/service/longwatch/', snap.revision + 1, {
      onEvents: (e) => void events.push(...e),
      onError: (e) => void errors.push(e),
    });
    try {
      await store.put('/service/longwatch/a', '1');
      await until(() => events.length === 1 || errors.length > 0);
      await sleep(PAST_TTL_MS);
      await store.put('/service/longwatch/b', '2');
      await until(() => events.length === 2 || errors.length > 0);
      assert.deepEqual(
        errors.map((e) => e.message),
        [],
      );
      assert.equal(events.length, 2);
    } finally {
      await watch.close();
    }
  });

  it("no password appears in etcd's log or in any error message of this run", async () => {
    const log = readFileSync(logFile, 'utf8') + messages.join('\n');
    for (const p of ALL_PASSWORDS) assert.ok(!log.includes(p), 'a password leaked into the log');
    assert.ok(messages.length >= 4, 'the test saw its refusals');
  });
});

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond() && Date.now() < end) await sleep(20);
}

function rawPost(
  endpoint: string,
  tls: { ca: string; cert: string; key: string },
  path: string,
  body: string,
  token?: string,
): Promise<string> {
  const [host, port] = endpoint.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port: Number(port), path, method: 'POST', ...tls, headers: token ? { authorization: token } : {} },
      (res) => {
        let out = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (out += c));
        res.on('end', () => resolve(out));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function rawToken(endpoint: string, tls: { ca: string; cert: string; key: string }): Promise<string> {
  const out = JSON.parse(
    await rawPost(endpoint, tls, '/v3/auth/authenticate', JSON.stringify({ name: 'pgkeel', password })),
  ) as { token?: string };
  assert.ok(out.token, 'authenticate gave a token');
  return out.token;
}

function rawPut(endpoint: string, tls: { ca: string; cert: string; key: string }, token: string): Promise<string> {
  return rawPost(
    endpoint,
    tls,
    '/v3/kv/put',
    JSON.stringify({ key: Buffer.from('/service/expiry/raw').toString('base64'), value: 'eA==' }),
    token,
  );
}
