/**
 * node.yml against hostile input (issue 8): keys that name Object.prototype members, configuration injection
 * through parameter names, values and pg_hba lines, out-of-range ports, local-only parameters in the dynamic
 * configuration, YAML alias bombs, and secrets read from `*_file`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject, loadConfig } from './load.js';
import { ConfigError } from './schema.js';

const minimal = () => ({
  scope: 'demo',
  name: 'n1',
  postgresql: {
    data_dir: '/var/lib/pgkeel/n1',
    authentication: { superuser: { password: 's' }, replication: { password: 'r' } },
  } as Record<string, unknown>,
});
const withPg = (pg: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  ...minimal(),
  postgresql: { ...minimal().postgresql, ...pg },
  ...extra,
});

function problems(raw: unknown, env: NodeJS.ProcessEnv = {}, baseDir = '/etc/pgkeel'): string[] {
  try {
    configFromObject(raw, 'test.yml', env, baseDir);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
function inTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-harden-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('config: keys are own properties', () => {
  it('refuses constructor, toString, hasOwnProperty and __proto__ as unknown keys, at the top and nested', () => {
    const raw = JSON.parse(
      '{"scope":"demo","name":"n1","constructor":{"prototype":{"x":1}},"toString":"x","__proto__":{"polluted":1},' +
        '"postgresql":{"data_dir":"/d","hasOwnProperty":1,"authentication":{"superuser":{"password":"s","valueOf":1},"replication":{"password":"r"}}}}',
    );
    const p = problems(raw);
    for (const key of [
      'constructor',
      'toString',
      '__proto__',
      'postgresql.hasOwnProperty',
      'postgresql.authentication.superuser.valueOf',
    ]) {
      assert.ok(
        p.some((x) => x.startsWith(`${key}: unknown key`)),
        `${key} refused:\n${p.join('\n')}`,
      );
    }
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  it('refuses Object.prototype names as parameter names (the map keys)', () => {
    const p = problems(withPg({ parameters: JSON.parse('{"constructor":"x","__proto__":"y","work_mem":"8MB"}') }));
    assert.ok(
      p.some((x) => x.startsWith('postgresql.parameters.constructor: is a reserved name')),
      p.join('\n'),
    );
    assert.ok(
      p.some((x) => x.startsWith('postgresql.parameters.__proto__: is a reserved name')),
      p.join('\n'),
    );
    assert.equal(p.length, 2);
  });
});

describe('config: nothing that could add a line to a PostgreSQL config file', () => {
  it('refuses a parameter name with a newline, naming the key (quoted) and the expected form', () => {
    const p = problems(withPg({ parameters: { 'x = 1\nfsync': 'off' } }));
    assert.equal(p.length, 1, p.join('\n'));
    assert.match(
      p[0] as string,
      /^postgresql\.parameters\["x = 1\\nfsync"\]: expected the name to be a PostgreSQL parameter name/,
    );
    assert.ok(!(p[0] as string).includes('\n'), 'the problem stays on one line');
  });

  it('refuses the same in bootstrap.dcs, and names with spaces, = or quotes', () => {
    const p = problems({
      ...minimal(),
      bootstrap: { dcs: { postgresql: { parameters: { 'a b': 1, 'a=b': 1, "a'": 1 } } } },
    });
    assert.equal(
      p.filter((x) => x.includes('expected the name to be a PostgreSQL parameter name')).length,
      3,
      p.join('\n'),
    );
    assert.ok(
      p.every((x) => x.startsWith('bootstrap.dcs.postgresql.parameters[')),
      p.join('\n'),
    );
  });

  it('accepts GUC identifiers, extension settings with one dot, and tabs in values', () => {
    const c = configFromObject(
      withPg({ parameters: { work_mem: '8MB', 'pg_stat_statements.max': 1000, _x$1: 'a\tb' } }),
      'x',
      {},
      '/',
    );
    assert.equal(c.postgresql.parameters['pg_stat_statements.max'], 1000);
  });

  it('refuses values with a newline, carriage return or NUL', () => {
    const p = problems(withPg({ parameters: { work_mem: "8MB'\nfsync = off\n#", a: 'x\ry', b: 'x\u0000' } }));
    for (const k of ['work_mem', 'a', 'b'])
      assert.ok(
        p.some((x) => x.startsWith(`postgresql.parameters.${k}: must not contain control characters`)),
        p.join('\n'),
      );
  });

  it('refuses YAML .inf and .nan as parameter values', () => {
    const p = problems(withPg({ parameters: { work_mem: Infinity, max_connections: Number.NaN } }));
    assert.deepEqual(p, [
      'postgresql.parameters.work_mem: expected a finite number, got Infinity',
      'postgresql.parameters.max_connections: expected a finite number, got NaN',
    ]);
  });

  it('refuses a pg_hba line with a newline, naming its index', () => {
    const p = problems(
      withPg({
        pg_hba: [
          'host all all 10.0.0.0/8 scram-sha-256',
          'host all all 0.0.0.0/0 scram-sha-256\nhost all all 0.0.0.0/0 trust',
        ],
      }),
    );
    assert.equal(p.length, 1, p.join('\n'));
    assert.match(p[0] as string, /^postgresql\.pg_hba\[1\]: must not contain control characters/);
  });

  it('refuses control characters in any other string (a callback, the data directory)', () => {
    const p = problems(withPg({ data_dir: '/d\n', callbacks: { on_start: 'true\nrm -rf /' } }));
    assert.ok(
      p.some((x) => x.startsWith('postgresql.data_dir: must not contain control characters')),
      p.join('\n'),
    );
    assert.ok(
      p.some((x) => x.startsWith('postgresql.callbacks.on_start: must not contain control characters')),
      p.join('\n'),
    );
  });
});

describe('config: ports are 1-65535, naming the key', () => {
  for (const port of [0, 70000, 99999]) {
    it(`refuses port ${port} in every host:port setting`, () => {
      const hp = `127.0.0.1:${port}`;
      const p = problems({
        ...withPg({ listen: hp, connect_address: hp }),
        restapi: { listen: hp, connect_address: hp },
        etcd3: { hosts: [hp] },
      });
      for (const key of [
        'postgresql.listen',
        'postgresql.connect_address',
        'restapi.listen',
        'restapi.connect_address',
        'etcd3.hosts[0]',
      ]) {
        assert.ok(p.includes(`${key}: expected a port from 1 to 65535, got "${hp}"`), `${key}:\n${p.join('\n')}`);
      }
    });
  }

  it('accepts 1 and 65535', () => {
    assert.deepEqual(problems({ ...withPg({ listen: '127.0.0.1:1' }), restapi: { listen: '[::1]:65535' } }), []);
  });
});

describe('config: local-only parameters in bootstrap.dcs', () => {
  it('refuses archive_command (any case) and shared_preload_libraries with the code and how to allow them', () => {
    const p = problems({
      ...minimal(),
      bootstrap: {
        dcs: {
          postgresql: {
            parameters: { ARCHIVE_COMMAND: 'id > /tmp/x', shared_preload_libraries: 'evil', work_mem: '8MB' },
          },
        },
      },
    });
    assert.equal(p.length, 2, p.join('\n'));
    assert.match(
      p[0] as string,
      /^bootstrap\.dcs\.postgresql\.parameters\.ARCHIVE_COMMAND: CONFIG_PARAMETER_LOCAL_ONLY: ARCHIVE_COMMAND runs a shell command .*postgresql\.allow_dynamic_parameters: \[archive_command\]/,
    );
    assert.match(p[1] as string, /shared_preload_libraries loads a shared library/);
  });

  it('accepts them when postgresql.allow_dynamic_parameters lists them, and always in the local postgresql.parameters', () => {
    const allowed = withPg(
      { allow_dynamic_parameters: ['archive_command'] },
      { bootstrap: { dcs: { postgresql: { parameters: { archive_command: '/bin/true' } } } } },
    );
    assert.deepEqual(problems(allowed), []);
    assert.deepEqual(
      problems(
        withPg({
          parameters: {
            archive_command: '/bin/true',
            shared_preload_libraries: 'pg_stat_statements',
            include: '/etc/x.conf',
          },
        }),
      ),
      [],
    );
  });

  it('refuses an allowance that is not a parameter name', () => {
    const p = problems(withPg({ allow_dynamic_parameters: ['archive_command\nx'] }));
    assert.ok(
      p.some((x) => x.startsWith('postgresql.allow_dynamic_parameters[0]: must not contain control characters')),
      p.join('\n'),
    );
  });
});

describe('config: YAML failures name the file', () => {
  it('refuses a billion-laughs alias bomb, naming the file', () => {
    inTmp((dir) => {
      const f = join(dir, 'bomb.yml');
      let y = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
      let prev = 'a';
      for (const n of 'bcdefghi') {
        y += `${n}: &${n} [${Array(9).fill(`*${prev}`).join(',')}]\n`;
        prev = n;
      }
      writeFileSync(f, `scope: demo\nname: n1\n${y}`);
      assert.throws(
        () => loadConfig(f, {}),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.message.startsWith(`${f}: `) &&
          /too many YAML alias expansions/.test(e.message),
      );
    });
  });

  it('a document that is not a mapping, or a duplicate key, is a ConfigError naming the file', () => {
    inTmp((dir) => {
      const f = join(dir, 'list.yml');
      writeFileSync(f, '- a\n- b\n');
      assert.throws(
        () => loadConfig(f, {}),
        (e: unknown) => e instanceof ConfigError && e.message.startsWith(`${f}: `),
      );
      writeFileSync(f, 'a: 1\na: 2\n');
      assert.throws(
        () => loadConfig(f, {}),
        (e: unknown) => e instanceof ConfigError && e.message.startsWith(`${f}: `) && /YAML syntax/.test(e.message),
      );
    });
  });
});

describe('config: secrets from *_file', () => {
  const creds = (superuser: Record<string, unknown>) =>
    withPg({ authentication: { superuser, replication: { password: 'r' } } });

  it('reads the secret from a file relative to the config file, without its trailing newline', () => {
    inTmp((dir) => {
      writeFileSync(join(dir, 'su.pw'), 'from-file\n', { mode: 0o600 });
      writeFileSync(join(dir, 'api.pw'), 'api-pw', { mode: 0o600 });
      const raw = {
        ...creds({ password_file: 'su.pw' }),
        restapi: { authentication: { username: 'admin', password_file: join(dir, 'api.pw') } },
      };
      const c = configFromObject(raw, 'x', {}, dir);
      assert.equal(c.postgresql.authentication.superuser.password, 'from-file');
      assert.equal(c.restapi.authentication?.password, 'api-pw');
      assert.equal(
        (c.postgresql.authentication.superuser as unknown as Record<string, unknown>)['password_file'],
        undefined,
      );
    });
  });

  it('takes <KEY>_FILE from the environment too', () => {
    inTmp((dir) => {
      writeFileSync(join(dir, 'pw'), 'env-file\r\n');
      const c = configFromObject(
        creds({}),
        'x',
        { PGKEEL_POSTGRESQL_AUTHENTICATION_SUPERUSER_PASSWORD_FILE: 'pw' },
        dir,
      );
      assert.equal(c.postgresql.authentication.superuser.password, 'env-file');
    });
  });

  it('a missing file, an empty file, or both keys set: one problem naming the _file key, no secret shown', () => {
    inTmp((dir) => {
      writeFileSync(join(dir, 'empty'), '\n');
      writeFileSync(join(dir, 'nl'), 'a\nb\n');
      const missing = problems(creds({ password_file: 'nope' }), {}, dir);
      assert.deepEqual(missing, [
        `postgresql.authentication.superuser.password_file: cannot read the secret file ${join(dir, 'nope')}: ENOENT`,
      ]);
      assert.match(
        problems(creds({ password_file: 'empty' }), {}, dir).join('\n'),
        /^postgresql\.authentication\.superuser\.password_file: the file .* is empty$/,
      );
      assert.deepEqual(problems(creds({ password: 'hunter2', password_file: 'empty' }), {}, dir), [
        'postgresql.authentication.superuser.password_file: give either password or password_file, not both',
      ]);
      const inner = problems(creds({ password_file: 'nl' }), {}, dir);
      assert.deepEqual(inner, [
        'postgresql.authentication.superuser.password_file: must not contain control characters (newline, carriage return, NUL, ...), got a value that is not shown (secret)',
      ]);
    });
  });

  it('only secrets have a _file variant', () => {
    const p = problems(withPg({ data_dir_file: 'x' }));
    assert.ok(
      p.some((x) => x.startsWith('postgresql.data_dir_file: unknown key')),
      p.join('\n'),
    );
  });
});
