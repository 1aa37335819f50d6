import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { makeCa, makeCert } from './certs.js';

describe('certs: a private CA for local clusters', () => {
  it('issues leaf certificates with the hosts as subjectAltNames, signed by the CA, keys 0600', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-certs-'));
    try {
      const ca = await makeCa(dir);
      const leaf = await makeCert(dir, ca, 'node1', { hosts: ['127.0.0.1', 'localhost'] });
      const caCert = new X509Certificate(readFileSync(ca.cert));
      const cert = new X509Certificate(readFileSync(leaf.cert));
      assert.equal(caCert.ca, true);
      assert.equal(cert.ca, false);
      assert.ok(cert.verify(caCert.publicKey), 'signed by the CA');
      assert.ok(cert.checkIP('127.0.0.1'));
      assert.ok(cert.checkHost('localhost'));
      assert.equal(cert.checkHost('example.org'), undefined);
      assert.equal(statSync(leaf.key).mode & 0o777, 0o600);
      assert.equal(statSync(ca.key).mode & 0o777, 0o600);
      // Idempotent: a second call keeps the files.
      const again = await makeCert(dir, ca, 'node1');
      assert.equal(readFileSync(again.cert, 'utf8'), readFileSync(leaf.cert, 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a name that is not a plain file name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-certs-'));
    try {
      const ca = await makeCa(dir);
      await assert.rejects(makeCert(dir, ca, '../evil'), /invalid certificate name/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
