/**
 * REST over https with client certificates, on a real listener with certificates from a private CA
 * (src/lib/certs.ts): who is refused at the handshake, who at the endpoint, and that ctl's and the agent's own
 * client (Patroni's ctl → restapi fallbacks) gets through.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCa, makeCert } from '../lib/certs.js';
import { restTlsSections } from '../local/rest-tls.js';
import { fetchPeer } from '../ha/gather.js';
import { CREDS, fixture } from './api-fixture.js';
import {
  memberApiUrl,
  restClientOptions,
  restRequest,
  RestTlsFileError,
  type RestClientConfig,
} from '../cluster/rest-client.js';

let dir: string;
let other: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgkeel-rest-tls-'));
  const ca = await makeCa(dir);
  await makeCert(dir, ca, 'node1');
  await makeCert(dir, ca, 'client');
  // A client certificate from a CA the server does not trust.
  other = join(dir, 'other');
  const otherCa = await makeCa(other, 'ca', 'someone else');
  await makeCert(other, otherCa, 'client');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const clientCfg = (
  ctl: RestClientConfig['ctl'],
  restapi: Partial<RestClientConfig['restapi']> = {},
): RestClientConfig => ({
  restapi: { listen: '', connect_address: '', verify_client: 'none', authentication: CREDS, ...restapi },
  ctl,
});

describe('REST https', () => {
  it("verify_client required: no client certificate or one from another CA is refused at the handshake; ctl's certificate gets in", async () => {
    const s = restTlsSections(dir, 'node1');
    await using f = await fixture({ auth: true, restapi: s.restapi });
    const url = new URL(`https://127.0.0.1:${f.port}/patroni`);
    assert.equal(memberApiUrl(f.cfg), `https://127.0.0.1:${f.port}/patroni`);

    await assert.rejects(
      restRequest(url, 'GET', restClientOptions(clientCfg({ cacert: s.ctl.cacert, insecure: false }))),
      /certificate|alert|socket hang up|ECONNRESET/i,
    );
    await assert.rejects(
      restRequest(
        url,
        'GET',
        restClientOptions(
          clientCfg({
            cacert: s.ctl.cacert,
            certfile: join(other, 'client.crt'),
            keyfile: join(other, 'client.key'),
            insecure: false,
          }),
        ),
      ),
      /certificate|alert|socket hang up|ECONNRESET/i,
    );
    await assert.rejects(
      restRequest(
        new URL(`http://127.0.0.1:${f.port}/patroni`),
        'GET',
        restClientOptions(clientCfg({ insecure: false })),
      ),
      'plain http on the https port',
    );

    const ctl = restClientOptions(clientCfg({ ...s.ctl, insecure: false }));
    assert.equal((await restRequest(url, 'GET', ctl)).code, 200, 'health/status over https');
    assert.equal((await restRequest(new URL('/reload', url), 'POST', ctl, {})).code, 202);
    assert.equal(
      (await restRequest(new URL('/reload', url), 'POST', { ...ctl, auth: undefined }, {})).code,
      401,
      'a certificate does not replace the credentials',
    );
    // The agent's own peer call (member status while the leader key is free) with the same options.
    assert.deepEqual((await fetchPeer(url.href, ctl)).reachable, true);
    assert.deepEqual((await fetchPeer(url.href)).reachable, false);
  });

  it('verify_client optional: health checks without a certificate, unsafe endpoints 403 without one', async () => {
    const s = restTlsSections(dir, 'node1', { verifyClient: 'optional' });
    await using f = await fixture({ auth: true, restapi: s.restapi });
    const url = new URL(`https://127.0.0.1:${f.port}/patroni`);
    const noCert = restClientOptions(clientCfg({ cacert: s.ctl.cacert, insecure: false }));
    assert.equal((await restRequest(url, 'GET', noCert)).code, 200);
    const r = await restRequest(new URL('/restart', url), 'POST', noCert, {});
    assert.deepEqual([r.code, r.text], [403, 'client certificate required\n']);
    assert.equal(
      (
        await restRequest(
          new URL('/reload', url),
          'POST',
          restClientOptions(clientCfg({ ...s.ctl, insecure: false })),
          {},
        )
      ).code,
      202,
    );
  });

  it('server certificate checks: an unknown CA is refused unless ctl.insecure; the restapi files are the fallback', async () => {
    const s = restTlsSections(dir, 'node1', { verifyClient: 'none' });
    await using f = await fixture({ auth: true, restapi: s.restapi });
    const url = new URL(`https://127.0.0.1:${f.port}/patroni`);
    await assert.rejects(
      restRequest(url, 'GET', restClientOptions(clientCfg({ insecure: false }))),
      /self.signed|unable to (get|verify)|certificate/i,
    );
    assert.equal((await restRequest(url, 'GET', restClientOptions(clientCfg({ insecure: true })))).code, 200);
    // No ctl section: the agent's restapi.cafile verifies peers (Patroni's request.py order).
    assert.equal(
      (await restRequest(url, 'GET', restClientOptions(clientCfg({ insecure: false }, { cafile: s.restapi.cafile }))))
        .code,
      200,
    );
    assert.throws(
      () => restClientOptions(clientCfg({ cacert: join(dir, 'missing.crt'), insecure: false })),
      (e: unknown) =>
        e instanceof RestTlsFileError && /ctl\.cacert: cannot read .*missing\.crt: ENOENT/.test(e.message),
    );
  });

  it('an encrypted server key with restapi.keyfile_password', async () => {
    const enc = join(dir, 'node1-enc.key');
    await new Promise<void>((resolve, reject) =>
      execFile(
        'openssl',
        ['pkey', '-in', join(dir, 'node1.key'), '-aes256', '-passout', 'pass:open sesame', '-out', enc],
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    const s = restTlsSections(dir, 'node1', { verifyClient: 'none' });
    await using f = await fixture({
      auth: true,
      restapi: { ...s.restapi, keyfile: enc, keyfile_password: 'open sesame' },
    });
    const r = await restRequest(
      new URL(`https://127.0.0.1:${f.port}/health`),
      'GET',
      restClientOptions(clientCfg({ cacert: s.ctl.cacert, insecure: false })),
    );
    assert.equal(r.code, 503, 'served over https (503: PostgreSQL is not running in this fixture)');
  });
});
