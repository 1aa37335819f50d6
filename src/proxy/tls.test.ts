import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../config/schema.js';
import { proxyConfigFromObject } from './config.js';
import {
  clientModeRules,
  formatTlsInfo,
  loadTls,
  serverConnectOptions,
  serverModeRules,
  serverTlsChanged,
  type ServerTls,
  sslAnswer,
  sslRequestBytes,
  TLS_MODES,
  type TlsMode,
} from './tls.js';

const base = { listen: '127.0.0.1:6432', primary: '127.0.0.1:5432', auth_type: 'trust' };
const config = (extra: Record<string, unknown>) => proxyConfigFromObject({ ...base, ...extra }, 't');
const server = (mode: TlsMode): ServerTls => ({ mode, rules: serverModeRules(mode), context: null });
const cert = { subject: { CN: 'db.example' }, subjectaltname: 'DNS:db.example' } as unknown as PeerCertificate;

describe('TLS modes', () => {
  it('client side: what each client_tls_sslmode accepts and demands (pgBouncer)', () => {
    const table = Object.fromEntries(TLS_MODES.map((m) => [m, clientModeRules(m)]));
    assert.deepEqual(table, {
      disable: { accept: false, required: false, verifyPeer: false },
      allow: { accept: true, required: false, verifyPeer: false },
      prefer: { accept: true, required: false, verifyPeer: false },
      require: { accept: true, required: true, verifyPeer: false },
      'verify-ca': { accept: true, required: true, verifyPeer: true },
      'verify-full': { accept: true, required: true, verifyPeer: true },
    });
  });

  it('server side: libpq meanings of server_tls_sslmode', () => {
    const table = Object.fromEntries(TLS_MODES.map((m) => [m, serverModeRules(m)]));
    assert.deepEqual(table, {
      disable: { request: false, fallback: true, verifyChain: false, verifyHost: false },
      allow: { request: true, fallback: true, verifyChain: false, verifyHost: false },
      prefer: { request: true, fallback: true, verifyChain: false, verifyHost: false },
      require: { request: true, fallback: false, verifyChain: false, verifyHost: false },
      'verify-ca': { request: true, fallback: false, verifyChain: true, verifyHost: false },
      'verify-full': { request: true, fallback: false, verifyChain: true, verifyHost: true },
    });
  });

  it('maps a server mode to tls.connect options: chain check, host name check, SNI for names only', () => {
    const socket = new Socket();
    const o = (mode: TlsMode, host = 'db.example') => serverConnectOptions(server(mode), host, socket);
    assert.equal(o('require').rejectUnauthorized, false);
    assert.equal(o('verify-ca').rejectUnauthorized, true);
    assert.equal(o('verify-full').rejectUnauthorized, true);
    // verify-ca accepts a certificate for another host; verify-full does not.
    assert.equal(o('verify-ca', 'other.example').checkServerIdentity?.('other.example', cert), undefined);
    assert.ok(o('verify-full', 'other.example').checkServerIdentity?.('other.example', cert) instanceof Error);
    assert.equal(o('verify-full').checkServerIdentity?.('db.example', cert), undefined);
    assert.equal(o('verify-full').servername, 'db.example');
    assert.equal('servername' in o('verify-full', '127.0.0.1'), false);
    assert.equal(o('prefer').socket, socket);
    assert.equal(o('prefer').host, 'db.example');
  });
});

describe('SSLRequest and its answer', () => {
  it('SSLRequest is 8 bytes: length 8, code 80877103', () => {
    assert.equal(sslRequestBytes().toString('hex'), '0000000804d2162f');
    assert.equal(sslRequestBytes().readInt32BE(4), 80877103);
  });

  it("'S' alone starts TLS; anything sent with it is refused (CVE-2021-23222)", () => {
    assert.deepEqual(sslAnswer('require', Buffer.from('S')), { kind: 'tls' });
    const a = sslAnswer('prefer', Buffer.from('SE\0\0\0\x08'));
    assert.equal(a.kind, 'error');
  });

  it("'N' falls back to plaintext under allow/prefer only, and fails fatally otherwise", () => {
    for (const m of ['allow', 'prefer'] as const) assert.deepEqual(sslAnswer(m, Buffer.from('N')), { kind: 'plain' });
    for (const m of ['require', 'verify-ca', 'verify-full'] as const) {
      const a = sslAnswer(m, Buffer.from('N'));
      assert.equal(a.kind, 'error');
      assert.equal(a.kind === 'error' && a.fatal, true);
      assert.match(a.kind === 'error' ? a.message : '', /the server does not support SSL/);
    }
    assert.equal(sslAnswer('prefer', Buffer.from('NR')).kind, 'error');
  });

  it('an error or a stray byte is a retryable failure', () => {
    const e = sslAnswer('prefer', Buffer.from('E'));
    assert.deepEqual([e.kind, e.kind === 'error' && e.fatal], ['error', false]);
    const x = sslAnswer('require', Buffer.from([0x01]));
    assert.match(x.kind === 'error' ? x.message : '', /unexpected answer to SSLRequest \(byte 0x01\)/);
  });
});

describe('TLS settings', () => {
  it('defaults: clients disable, servers prefer (pgBouncer)', () => {
    const c = config({});
    assert.equal(c.client_tls_sslmode, 'disable');
    assert.equal(c.server_tls_sslmode, 'prefer');
    const t = loadTls(c, 't');
    assert.equal(t.client.context, null);
    assert.equal(t.server.mode, 'prefer');
    assert.notEqual(t.server.context, null);
  });

  it('refuses a mode without the files it needs, naming the key', () => {
    assert.throws(
      () => config({ client_tls_sslmode: 'require' }),
      (e) =>
        e instanceof ConfigError &&
        /client_tls_key_file: is required with client_tls_sslmode require/.test(e.message) &&
        /client_tls_cert_file: is required/.test(e.message),
    );
    assert.throws(
      () => config({ client_tls_sslmode: 'verify-ca', client_tls_key_file: 'k', client_tls_cert_file: 'c' }),
      /client_tls_ca_file: is required with client_tls_sslmode verify-ca/,
    );
    assert.throws(
      () => config({ server_tls_sslmode: 'verify-full' }),
      /server_tls_ca_file: is required with server_tls_sslmode verify-full/,
    );
    assert.throws(
      () => config({ server_tls_key_file: 'k' }),
      /server_tls_cert_file: is required with server_tls_key_file/,
    );
    assert.throws(() => config({ server_tls_sslmode: 'sometimes' }), /server_tls_sslmode/);
    config({
      server_tls_sslmode: 'require',
      client_tls_sslmode: 'prefer',
      client_tls_key_file: 'k',
      client_tls_cert_file: 'c',
    });
  });

  it('resolves file paths against the config file directory', () => {
    const c = proxyConfigFromObject(
      { ...base, server_tls_sslmode: 'verify-ca', server_tls_ca_file: 'certs/ca.pem' },
      't',
      '/etc/pgkeel',
    );
    assert.equal(c.server_tls_ca_file, '/etc/pgkeel/certs/ca.pem');
  });

  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-tls-unit-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('an unreadable file is a start-up error naming the key and the path', () => {
    const missing = join(dir, 'nope.pem');
    const c = config({ client_tls_sslmode: 'require', client_tls_key_file: missing, client_tls_cert_file: missing });
    assert.throws(
      () => loadTls(c, 'proxy.yml'),
      (e) => {
        assert.ok(e instanceof ConfigError);
        assert.deepEqual(
          e.problems.map((p) => p.path),
          ['client_tls_key_file', 'client_tls_cert_file'],
        );
        assert.match(e.message, new RegExp(`proxy.yml: .*\\n  client_tls_key_file: cannot read "${missing}": ENOENT`));
        return true;
      },
    );
  });

  it('a file OpenSSL cannot use names the settings involved', () => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    const c = config({ server_tls_sslmode: 'verify-ca', server_tls_ca_file: junk });
    assert.throws(
      () => loadTls(c, 't'),
      (e) => e instanceof ConfigError && e.problems[0]?.path === 'server_tls_ca_file' && e.message.includes(junk),
    );
    const k = config({ server_tls_sslmode: 'require', server_tls_key_file: junk, server_tls_cert_file: junk });
    assert.throws(
      () => loadTls(k, 't'),
      (e) =>
        e instanceof ConfigError &&
        e.problems[0]?.path === 'server_tls_key_file, server_tls_cert_file' &&
        e.message.includes(junk),
    );
  });

  it('RELOAD reconnects servers only when a server_tls_* setting changed', () => {
    const a = config({});
    assert.equal(serverTlsChanged(a, config({ default_pool_size: 3 })), false);
    assert.equal(serverTlsChanged(a, config({ server_tls_sslmode: 'require' })), true);
  });
});

describe('SHOW CLIENTS/SERVERS tls column', () => {
  it("uses pgBouncer's protocol/cipher/key-exchange format", () => {
    assert.equal(
      formatTlsInfo('TLSv1.3', 'TLS_AES_256_GCM_SHA384', { type: 'ECDH', name: 'X25519', size: 253 }),
      'TLSv1.3/TLS_AES_256_GCM_SHA384/ECDH=X25519',
    );
    assert.equal(
      formatTlsInfo('TLSv1.2', 'DHE-RSA-AES256-GCM-SHA384', { type: 'DH', size: 2048 }),
      'TLSv1.2/DHE-RSA-AES256-GCM-SHA384/DH=2048',
    );
    // The accepting side of a connection does not learn the key exchange from Node: left out, as pgBouncer does when unknown.
    assert.equal(formatTlsInfo('TLSv1.3', 'TLS_AES_128_GCM_SHA256', null), 'TLSv1.3/TLS_AES_128_GCM_SHA256');
  });
});
