import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../config/schema.js';
import { checkConfigFile, configKind } from './config-check.js';

const dir = mkdtempSync(join(tmpdir(), 'pgkeel-config-check-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, lines: string[]): string {
  const p = join(dir, name);
  writeFileSync(p, lines.join('\n') + '\n');
  return p;
}

function problems(f: string, proxy = false): string[] {
  try {
    checkConfigFile(f, proxy);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('expected a ConfigError');
}

describe('config check', () => {
  it('tells a proxy config from a node config by its top-level listen key, or by --proxy', () => {
    assert.equal(configKind({ listen: '127.0.0.1:6432', primary: 'h:1' }, false), 'proxy');
    assert.equal(configKind({ scope: 's', name: 'n', restapi: { listen: 'h:1' } }, false), 'node');
    assert.equal(
      configKind({ scope: 's', listen: 'h:1' }, false),
      'node',
      'a node config with a stray listen stays a node config',
    );
    assert.equal(configKind({}, true), 'proxy');
    assert.equal(configKind(null, false), 'node');
  });

  it('accepts a valid proxy config and says what it found', () => {
    const f = file('ok.yml', ['listen: 127.0.0.1:6432', 'primary: 127.0.0.1:5432', 'auth_file: userlist.txt']);
    assert.match(
      checkConfigFile(f, false),
      /valid proxy config \(listen 127\.0\.0\.1:6432, primary 127\.0\.0\.1:5432, pool_mode transaction, auth_type scram-sha-256\)/,
    );
    const t = file('trust.yml', ['listen: 127.0.0.1:6432', 'primary: 127.0.0.1:5432', 'auth_type: trust']);
    assert.match(checkConfigFile(t, false), /note: auth_type trust/);
  });

  it('lists every problem of a proxy config with its key path and the expected form', () => {
    const f = file('bad.yml', [
      'listen: 127.0.0.1:70000',
      'primary: 127.0.0.1:0',
      'replicas: [127.0.0.1:5433, "127.0.0.1:99999"]',
      'pool_mode: statement',
      'max_buffered_packet_size: 10',
      'max_client_con: 3',
      'constructor: {}',
    ]);
    const got = problems(f);
    const want = [
      /^pool_mode: .*session, transaction/,
      /^max_buffered_packet_size: .*65536/,
      /^max_client_con: unknown key \(did you mean "max_client_conn"\?\)/,
      /^constructor: unknown key/,
    ];
    for (const w of want)
      assert.ok(
        got.some((p) => w.test(p)),
        `${w} in ${got.join(' | ')}`,
      );
    const ports = problems(
      file('ports.yml', [
        'listen: 127.0.0.1:70000',
        'primary: 127.0.0.1:0',
        'replicas: [127.0.0.1:5433, "127.0.0.1:99999"]',
        'auth_type: trust',
      ]),
    );
    assert.deepEqual(ports, [
      'listen: expected a port from 0 to 65535 (0: any free port), got "127.0.0.1:70000"',
      'primary: expected a port from 1 to 65535, got "127.0.0.1:0"',
      'replicas[1]: expected a port from 1 to 65535, got "127.0.0.1:99999"',
    ]);
  });

  it('checks a proxy config named anything with --proxy, and a node config as before', () => {
    const f = file('p.yml', ['primary: 127.0.0.1:5432', 'auth_type: trust']);
    assert.ok(
      problems(f, true).some((p) => /^listen: /.test(p)),
      'listen is required',
    );
    const n = file('node.yml', ['scope: demo', 'nam: n1']);
    assert.ok(problems(n).some((p) => /nam: unknown key/.test(p)));
  });
});
