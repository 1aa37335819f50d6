import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { commandFirst } from '../cli/ctl-cmd.js';
import { etcdSectionFromFlags } from '../cli/etcd-flags.js';
import { configProblems } from '../config/problems-fixture.js';
import { isNodeConfigDoc } from './ctl-config.js';
import { targetFromFile, targetFromFlags } from './target.js';

const dir = mkdtempSync(join(tmpdir(), 'pgkeel-ctl-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, lines: string[], mode = 0o644): string {
  const p = join(dir, name);
  writeFileSync(p, lines.join('\n') + '\n', { mode });
  return p;
}

describe('ctl target from the DCS settings alone', () => {
  it('reads a four-line ctl.yml: scope, etcd3.hosts; no database password, no REST credentials', () => {
    const f = file('ctl.yml', [
      'scope: prod',
      'namespace: /service/',
      'etcd3:',
      '  hosts: 10.0.0.11:2379,10.0.0.12:2379',
    ]);
    const t = targetFromFile(f, {});
    assert.equal(t.scope, 'prod');
    assert.equal(t.namespace, 'service');
    assert.deepEqual(t.hosts, ['10.0.0.11:2379', '10.0.0.12:2379']);
    assert.equal(t.etcd.protocol, 'http');
    assert.equal(t.rest.auth, undefined);
    assert.equal(t.source, f);
  });

  it('takes etcd TLS and user, REST credentials from a password file, and ctl certificates (relative to the file)', () => {
    const pw = file('rest.pw', ['s3cret'], 0o600);
    const pem = file('ca.crt', ['-----BEGIN CERTIFICATE-----', 'x', '-----END CERTIFICATE-----']);
    const f = file('ctl-tls.yml', [
      'scope: prod',
      'etcd3:',
      '  hosts: [etcd1:2379]',
      '  protocol: https',
      '  cacert: ca.crt',
      '  username: pgkeel',
      '  password_file: etcd.pw',
      'restapi:',
      '  authentication: {username: admin, password_file: rest.pw}',
      'ctl:',
      '  cacert: ca.crt',
    ]);
    const t = targetFromFile(f, {});
    assert.equal(t.etcd.protocol, 'https');
    assert.equal(t.etcd.cacert, pem);
    assert.equal(t.etcd.password_file, join(dir, 'etcd.pw'));
    assert.deepEqual(t.rest.auth, { username: 'admin', password: 's3cret' });
    assert.match(String(t.rest.tls.ca), /BEGIN CERTIFICATE/);
    assert.ok(pw);
  });

  it('refuses unknown keys with a hint, TLS files over http, half credentials; a ctl.yml has no postgresql section', () => {
    const bad = file('bad.yml', [
      'scope: prod',
      'etcd:',
      '  hosts: [etcd1:2379]',
      'etcd3:',
      '  cacert: ca.crt',
      'restapi:',
      '  authentication: {username: admin}',
    ]);
    const p = configProblems(() => targetFromFile(bad, {}));
    assert.match(p.join('\n'), /^etcd: .*did you mean "etcd3"/m);
    assert.equal(
      configProblems(() => targetFromFile(file('http.yml', ['scope: prod', 'etcd3: {cacert: ca.crt}']), {}))[0],
      'etcd3.cacert: needs etcd3.protocol https (got http): certificates are only used over TLS',
    );
    assert.deepEqual(
      configProblems(() =>
        targetFromFile(file('half.yml', ['scope: prod', 'restapi: {authentication: {username: a}}']), {}),
      ),
      ['restapi.authentication: expected both username and password'],
    );
    assert.match(
      configProblems(() => targetFromFile(file('noscope.yml', ['etcd3: {hosts: [a:1]}']), {}))[0] ?? '',
      /^scope: /,
    );
    assert.equal(isNodeConfigDoc({ scope: 's', name: 'n' }), true);
    assert.equal(isNodeConfigDoc({ scope: 's', postgresql: {} }), true);
    assert.equal(isNodeConfigDoc({ scope: 's', etcd3: {} }), false);
    assert.equal(isNodeConfigDoc(null), false);
  });

  it('-c with a node config still reads the node config (its REST credentials, its member)', () => {
    const f = file('node.yml', [
      'scope: prod',
      'name: node1',
      'restapi: {listen: 127.0.0.1:8008, authentication: {username: u, password: p}}',
      'postgresql:',
      '  data_dir: data',
      '  authentication: {superuser: {password: a}, replication: {password: b}}',
    ]);
    const t = targetFromFile(f, {});
    assert.deepEqual(t.rest.auth, { username: 'u', password: 'p' });
    assert.equal(t.eventFiles?.[0]?.member, 'node1');
  });

  it('--etcd … --scope … [--namespace …] builds the same target from flags, checked the same way', () => {
    const t = targetFromFlags(
      etcdSectionFromFlags({
        etcd: '10.0.0.11:2379,10.0.0.12:2379',
        'etcd-user': 'pgkeel',
        'etcd-password-file': '/p',
      }),
      'prod',
      'pg',
    );
    assert.deepEqual(t.hosts, ['10.0.0.11:2379', '10.0.0.12:2379']);
    assert.equal(t.namespace, 'pg');
    assert.equal(t.etcd.username, 'pgkeel');
    assert.equal(t.etcd.password_file, '/p');
    assert.equal(t.source, 'the command line');
    assert.match(
      configProblems(() => targetFromFlags({ hosts: ['nope'] }, 'prod', undefined))[0] ?? '',
      /^etcd3\.hosts\[0\]/,
    );
    assert.match(configProblems(() => targetFromFlags({ hosts: ['a:1'] }, 'a/b', undefined))[0] ?? '', /^scope: /);
  });

  it('target flags may come before the command, as patronictl -c', () => {
    assert.deepEqual(commandFirst(['--etcd', 'a:1', '--scope=prod', 'list', '--json']), [
      'list',
      '--etcd',
      'a:1',
      '--scope=prod',
      '--json',
    ]);
    assert.deepEqual(commandFirst(['-c', 'ctl.yml', 'switchover', '--force']), [
      'switchover',
      '-c',
      'ctl.yml',
      '--force',
    ]);
    assert.deepEqual(commandFirst(['list', '--etcd', 'a:1']), ['list', '--etcd', 'a:1']);
  });
});
