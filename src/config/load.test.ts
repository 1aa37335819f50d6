import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject, envNameFor, envOverrides, loadConfig } from './load.js';
import { ConfigError } from './schema.js';

const minimal = () => ({
  scope: 'demo',
  name: 'n1',
  postgresql: {
    data_dir: '/var/lib/pgkeel/n1',
    authentication: { superuser: { password: 's' }, replication: { password: 'r' } },
  },
});

function problems(raw: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    configFromObject(raw, 'test.yml', env, '/etc/pgkeel');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

describe('config: postgresql.listen with several addresses', () => {
  const withListen = (listen: string, connect?: string) => {
    const m = minimal();
    return { ...m, postgresql: { ...m.postgresql, listen, ...(connect ? { connect_address: connect } : {}) } };
  };
  it("accepts Patroni's host,host:port; connect_address defaults to the first host", () => {
    const c = configFromObject(withListen('10.0.0.11,10.0.0.100:5433'), 'test.yml', {}, '/etc/pgkeel');
    assert.equal(c.postgresql.listen, '10.0.0.11,10.0.0.100:5433');
    assert.equal(c.postgresql.connect_address, '10.0.0.11:5433');
    const star = configFromObject(withListen('*:5432', '10.0.0.11:5432'), 'test.yml', {}, '/etc/pgkeel');
    assert.equal(star.postgresql.connect_address, '10.0.0.11:5432');
  });
  it('refuses a list without a port, an empty host, or a port out of range', () => {
    for (const bad of ['10.0.0.11,10.0.0.100', '10.0.0.11,:5432', '10.0.0.11,10.0.0.100:70000', 'a b:5432'])
      assert.equal(problems(withListen(bad)).filter((p) => p.startsWith('postgresql.listen')).length, 1, bad);
  });
});

describe('config: defaults', () => {
  it('fills Patroni-like defaults and derives addresses and paths', () => {
    const c = configFromObject(minimal(), 'test.yml', {}, '/etc/pgkeel');
    assert.equal(c.namespace, 'service');
    assert.deepEqual(c.etcd3.hosts, ['127.0.0.1:2379']);
    assert.equal(c.restapi.connect_address, c.restapi.listen);
    assert.equal(c.postgresql.connect_address, '127.0.0.1:5432');
    assert.equal(c.postgresql.socket_dir, '/var/lib/pgkeel/run');
    assert.equal(c.postgresql.pgpass, '/var/lib/pgkeel/pgpass');
    assert.equal(c.postgresql.authentication.superuser.username, 'postgres');
    assert.equal(c.postgresql.authentication.replication.username, 'replicator');
    assert.equal(c.bootstrap.dcs.maximum_lag_on_failover, 1048576);
    assert.ok(c.bootstrap.dcs.loop_wait + 2 * c.bootstrap.dcs.retry_timeout <= c.bootstrap.dcs.ttl);
    assert.equal(c.restapi.authentication, undefined);
    assert.equal(c.tags.nofailover, false);
  });

  it('resolves a relative data_dir against the config file directory', () => {
    const raw = minimal();
    raw.postgresql.data_dir = 'data';
    assert.equal(configFromObject(raw, 'x', {}, '/srv/node1').postgresql.data_dir, '/srv/node1/data');
  });

  it('accepts etcd3.hosts as a comma-separated string, as Patroni does', () => {
    const c = configFromObject({ ...minimal(), etcd3: { hosts: '10.0.0.1:2379, 10.0.0.2:2379' } }, 'x', {});
    assert.deepEqual(c.etcd3.hosts, ['10.0.0.1:2379', '10.0.0.2:2379']);
  });
});

describe('config: every problem with its key path and expected form', () => {
  it('reports missing required keys', () => {
    const p = problems({});
    assert.ok(p.includes('scope: is required: expected a cluster name (letters, digits, _ . -)'), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('name: is required')));
    assert.ok(p.some((x) => x.startsWith('postgresql.data_dir: is required')));
    assert.ok(p.some((x) => x.startsWith('postgresql.authentication.superuser.password: is required')));
  });

  it('names wrong types, bad addresses and out-of-range numbers', () => {
    const raw = {
      ...minimal(),
      restapi: { listen: 'localhost' },
      bootstrap: { dcs: { ttl: 'thirty', loop_wait: 0 } },
      tags: { nofailover: 'maybe' },
    };
    const p = problems(raw);
    assert.ok(p.includes('restapi.listen: expected host:port, e.g. 127.0.0.1:5432, got "localhost"'), p.join('\n'));
    assert.ok(p.includes('bootstrap.dcs.ttl: expected an integer (seconds) >= 4 <= 3600, got "thirty"'), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('bootstrap.dcs.loop_wait: expected an integer (seconds) >= 1')));
    assert.ok(p.includes('tags.nofailover: expected true or false, got "maybe"'), p.join('\n'));
  });

  it('rejects unknown keys with a did-you-mean', () => {
    const p = problems({ ...minimal(), postgresql: { ...minimal().postgresql, data_dri: '/x' } });
    assert.ok(
      p.some((x) => x.startsWith('postgresql.data_dri: unknown key (did you mean "data_dir"?)')),
      p.join('\n'),
    );
  });

  it('refuses ttl < loop_wait + 2*retry_timeout instead of adjusting it', () => {
    const p = problems({ ...minimal(), bootstrap: { dcs: { ttl: 10, loop_wait: 5, retry_timeout: 5 } } });
    assert.equal(p.length, 1);
    assert.match(
      p[0] as string,
      /^bootstrap\.dcs\.ttl: must be at least loop_wait \+ 2\*retry_timeout \(5 \+ 2\*5 = 15\), got 10/,
    );
  });

  it('refuses a socket directory longer than the unix socket path limit', () => {
    const p = problems({ ...minimal(), postgresql: { ...minimal().postgresql, socket_dir: '/' + 'x'.repeat(120) } });
    assert.ok(
      p.some((x) => x.startsWith('postgresql.socket_dir: must be at most')),
      p.join('\n'),
    );
  });

  it('never puts a secret value in a message', () => {
    const p = problems({
      ...minimal(),
      postgresql: {
        ...minimal().postgresql,
        authentication: { superuser: { password: 'hunter2', username: 'bad name!' }, replication: { password: 'r' } },
      },
    });
    assert.ok(p.length > 0);
    assert.ok(!p.join('\n').includes('hunter2'));
  });
});

describe('config: environment overrides', () => {
  it('derives PGKEEL_<PATH> names and honours Patroni-style aliases', () => {
    assert.equal(envNameFor('postgresql.data_dir'), 'PGKEEL_POSTGRESQL_DATA_DIR');
    const names = envOverrides().map((e) => e.env);
    assert.equal(new Set(names).size, names.length, 'no two settings share an environment variable');
    const c = configFromObject(minimal(), 'x', {
      PGKEEL_NAME: 'fromenv',
      PGKEEL_ETCD3_HOSTS: 'a:1,b:2',
      PGKEEL_BOOTSTRAP_DCS_TTL: '40',
      PGKEEL_SUPERUSER_PASSWORD: 'envpw',
    });
    assert.equal(c.name, 'fromenv');
    assert.deepEqual(c.etcd3.hosts, ['a:1', 'b:2']);
    assert.equal(c.bootstrap.dcs.ttl, 40);
    assert.equal(c.postgresql.authentication.superuser.password, 'envpw');
  });

  it('validates environment values like file values', () => {
    const p = problems(minimal(), { PGKEEL_BOOTSTRAP_DCS_LOOP_WAIT: 'soon' });
    assert.ok(
      p.some((x) => x.startsWith('bootstrap.dcs.loop_wait: expected an integer')),
      p.join('\n'),
    );
  });
});

describe('config: files', () => {
  it('reports YAML syntax errors with line and column, and unreadable files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-cfg-'));
    try {
      const f = join(dir, 'bad.yml');
      writeFileSync(f, 'scope: demo\nname: [unclosed\n');
      assert.throws(
        () => loadConfig(f, {}),
        (e: unknown) =>
          e instanceof ConfigError && /line \d+, column \d+/.test(e.message) && e.message.includes('YAML syntax'),
      );
      assert.throws(
        () => loadConfig(join(dir, 'missing.yml'), {}),
        (e: unknown) => e instanceof ConfigError && /cannot read the file/.test(e.message),
      );
      const dup = join(dir, 'dup.yml');
      writeFileSync(dup, 'scope: a\nscope: b\n');
      assert.throws(
        () => loadConfig(dup, {}),
        (e: unknown) => e instanceof ConfigError && /YAML syntax/.test(e.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
