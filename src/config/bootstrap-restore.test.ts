import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configFromObject } from './load.js';
import { ConfigError } from './schema.js';
import { restoreTargetOf } from './bootstrap-restore.js';

const node = (restore: unknown, extra: Record<string, unknown> = {}) => ({
  scope: 'demo',
  name: 'n1',
  postgresql: {
    data_dir: '/var/lib/pgkeel/n1',
    authentication: { superuser: { password: 's' }, replication: { password: 'r' } },
  },
  bootstrap: { restore },
  ...extra,
});

/** Every problem configFromObject reports for a node with this bootstrap.restore ("path: message"). */
function problems(restore: unknown, extra: Record<string, unknown> = {}): string[] {
  const err = ((): unknown => {
    try {
      configFromObject(node(restore, extra), 'test.yml', {}, '/etc/pgkeel');
      return null;
    } catch (e) {
      return e;
    }
  })();
  if (err === null) return [];
  assert.ok(err instanceof ConfigError);
  return err.problems.map((p) => `${p.path}: ${p.message}`);
}

describe('config: bootstrap.restore', () => {
  it('absent by default; a repository alone means the latest point (all archived WAL)', () => {
    assert.equal(configFromObject(node(undefined), 't', {}, '/etc').bootstrap.restore, undefined);
    const c = configFromObject(node({ repo: '/srv/old/backup' }), 't', {}, '/etc');
    assert.deepEqual(c.bootstrap.restore, { repo: '/srv/old/backup' });
    assert.deepEqual(restoreTargetOf(c.bootstrap.restore as { repo: string }), { kind: 'latest' });
  });

  it('a time target is normalized with its zone; an LSN target upper-cased', () => {
    const c = configFromObject(
      node({
        repo: '/srv/old',
        encryption_key_file: '/etc/k',
        backup: '20261203-050000F',
        target_time: '2026-12-03T14:03:00Z',
      }),
      't',
      {},
      '/etc',
    );
    assert.deepEqual(restoreTargetOf(c.bootstrap.restore as { repo: string; target_time: string }), {
      kind: 'time',
      time: '2026-12-03 14:03:00+00:00',
    });
    assert.deepEqual(restoreTargetOf({ repo: '/srv/old', target_lsn: '0/3a000060' }), {
      kind: 'lsn',
      lsn: '0/3A000060',
    });
  });

  it('refuses two targets, a time without a zone, a bad LSN, relative paths, a missing repo and unknown keys', () => {
    assert.deepEqual(problems({ repo: '/o', target_time: '2026-12-03 14:03:00+00', target_lsn: '0/1' }), [
      'bootstrap.restore.target_lsn: give at most one target: target_time or target_lsn, not both',
    ]);
    assert.match(
      problems({ repo: '/o', target_time: '2026-12-03 14:03' }).join(),
      /^bootstrap\.restore\.target_time: .*has no time zone/,
    );
    assert.match(problems({ repo: '/o', target_lsn: 'zz' }).join(), /^bootstrap\.restore\.target_lsn: .*is not an LSN/);
    assert.match(problems({ repo: 'old/backup' }).join(), /^bootstrap\.restore\.repo: expected an absolute path/);
    assert.match(
      problems({ repo: '/o', encryption_key_file: 'k' }).join(),
      /^bootstrap\.restore\.encryption_key_file: expected an absolute path/,
    );
    assert.match(problems({ target_time: '2026-12-03 14:03:00Z' }).join(), /^bootstrap\.restore\.repo: is required/);
    assert.match(problems({ repo: '/o', target: 'x' }).join(), /^bootstrap\.restore\.target: unknown key/);
  });

  it("refuses the cluster's own repository, local or from bootstrap.dcs, however it is spelled", () => {
    assert.deepEqual(problems({ repo: '/srv/pg/backup/' }, { backup: { repo: '/srv/pg/backup' } }), [
      "bootstrap.restore.repo: is this cluster's own backup repository (/srv/pg/backup); a cluster bootstrapped from a backup writes a new history and needs a repository of its own: set backup.repo to another directory",
    ]);
    const dcs = { bootstrap: { restore: { repo: '/srv/pg/./backup' }, dcs: { backup: { repo: '/srv/pg/backup' } } } };
    assert.match(problems(undefined, dcs).join(), /^bootstrap\.restore\.repo: is this cluster's own backup repository/);
    assert.deepEqual(problems({ repo: '/srv/old/backup' }, { backup: { repo: '/srv/new/backup' } }), []);
  });
});

describe('config: postgresql.create_replica_methods', () => {
  it('defaults to basebackup; takes backup first (a list or a comma string); refuses unknown, repeated or no methods', () => {
    assert.deepEqual(configFromObject(node(undefined), 't', {}, '/etc').postgresql.create_replica_methods, [
      'basebackup',
    ]);
    const pg = (methods: unknown) => ({
      postgresql: { ...node(undefined).postgresql, create_replica_methods: methods },
    });
    assert.deepEqual(
      configFromObject({ ...node(undefined), ...pg('backup, basebackup') }, 't', {}, '/etc').postgresql
        .create_replica_methods,
      ['backup', 'basebackup'],
    );
    assert.match(
      problems(undefined, pg(['backup', 'pgbackrest'])).join(),
      /create_replica_methods\[1\]: expected one of backup, basebackup/,
    );
    assert.match(
      problems(undefined, pg(['backup', 'backup'])).join(),
      /create_replica_methods: expected each method at most once/,
    );
    assert.match(
      problems(undefined, pg([])).join(),
      /create_replica_methods: expected each method at most once and at least one, got \[\]/,
    );
  });
});
