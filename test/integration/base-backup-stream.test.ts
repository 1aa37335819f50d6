/**
 * BASE_BACKUP through our own replication client against a real PostgreSQL 15: server-side lz4 and uncompressed
 * archives written to files, decompressed with the lz4 CLI, extracted with tar, and checked by pg_verifybackup
 * against the streamed manifest; SCRAM login, a wrong password (28P01), a Unix-socket login.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  type BackupCompression,
  type BaseBackupResult,
  type BaseBackupSink,
  runBaseBackup,
} from '../../src/backup/base-backup-stream.js';
import { type ConnectOptions, connectPostgres, ReplicationError } from '../../src/backup/replication-conn.js';
import { parseLsn } from '../../src/postgres/lsn.js';
import { startPostgres, USERS } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const exec = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

/** Writes each archive to DIR/<name> and the manifest to DIR/backup_manifest. */
class FileSink implements BaseBackupSink {
  private fh: FileHandle | null = null;
  readonly names: string[] = [];
  /** The last 'p' message's byte count (with `progress`). */
  progressBytes = 0;
  constructor(private readonly dir: string) {}
  start(): void {}
  progress(bytes: number): void {
    this.progressBytes = bytes;
  }
  async archive(name: string): Promise<void> {
    await this.switchTo(name);
  }
  async manifest(): Promise<void> {
    await this.switchTo('backup_manifest');
  }
  async data(chunk: Buffer): Promise<void> {
    await (this.fh as FileHandle).write(chunk);
  }
  async end(): Promise<void> {
    await this.fh?.close();
    this.fh = null;
  }
  private async switchTo(name: string): Promise<void> {
    await this.fh?.close();
    this.names.push(name);
    this.fh = await open(join(this.dir, name), 'w');
  }
}

/** SCRAM as scram_user on a replication=database connection. */
function scramLogin(pg: { host: string; port: number }, more: Partial<ConnectOptions> = {}): ConnectOptions {
  const base = { host: pg.host, port: pg.port, user: USERS.scram.user, password: USERS.scram.password };
  return { ...base, replication: 'database', database: 'postgres', ...more };
}

async function backupInto(
  out: string,
  pg: { host: string; port: number },
  compression: BackupCompression,
): Promise<{ result: BaseBackupResult; sink: FileSink }> {
  mkdirSync(out, { recursive: true });
  const conn = await connectPostgres(scramLogin(pg, { sslmode: 'disable' }));
  try {
    const sink = new FileSink(out);
    // The lz4 run also asks for progress reports and SHA-256 manifest checksums.
    const extra = compression === 'lz4' ? ({ progress: true, manifestChecksums: 'SHA256' } as const) : {};
    const opts = { label: `it-${compression}`, checkpoint: 'fast', compression, ...extra } as const;
    const result = await runBaseBackup(conn, opts, sink);
    return { result, sink };
  } finally {
    conn.close();
  }
}

describe('BASE_BACKUP stream against PostgreSQL 15', () => {
  it('streams lz4 and uncompressed backups that tar, lz4 and pg_verifybackup accept; SCRAM, wrong password, Unix socket', async () => {
    await using dir = await tempDir('bbstream');
    await using pg = await startPostgres(dir.path, {
      conf: { wal_level: 'replica', max_wal_senders: 5 },
      hba: [`host replication ${USERS.scram.user} 127.0.0.1/32 scram-sha-256`, 'local replication all trust'],
    });
    await pg.sql(`ALTER ROLE ${USERS.scram.user} REPLICATION`);
    await pg.sql('CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g');
    await pg.sql(`GRANT SELECT ON t TO ${USERS.scram.user}`);

    // A replication connection also runs replication commands and SQL.
    const conn = await connectPostgres(scramLogin(pg));
    const [ident] = await conn.query('IDENTIFY_SYSTEM');
    assert.deepEqual(ident?.columns, ['systemid', 'timeline', 'xlogpos', 'dbname']);
    assert.equal(ident?.rows[0]?.[1], '1');
    const [count] = await conn.query('SELECT count(*) FROM t');
    assert.deepEqual(count?.rows, [['50000']]);
    await assert.rejects(conn.query('SELECT * FROM no_such_table'), (e) => {
      return e instanceof ReplicationError && e.code === 'REPL_SERVER_ERROR' && e.sqlstate === '42P01';
    });
    assert.deepEqual((await conn.query('SELECT 1 AS one'))[0]?.rows, [['1']], 'usable after an error');
    conn.close();

    for (const compression of ['lz4', 'none'] as const) {
      const out = join(dir.path, `backup-${compression}`);
      const { result, sink } = await backupInto(out, pg, compression);
      const base = compression === 'lz4' ? 'base.tar.lz4' : 'base.tar';
      assert.deepEqual(sink.names, [base, 'backup_manifest']);
      assert.deepEqual(result.archives, [base]);
      const start = parseLsn(result.startLsn);
      const end = parseLsn(result.endLsn);
      assert.ok(start !== null && end !== null && start > 0 && end >= start, `${result.startLsn}..${result.endLsn}`);
      assert.equal(result.timeline, 1);
      assert.equal(result.tablespaces.length, 1);
      if (compression === 'lz4') {
        assert.ok((result.tablespaces[0]?.sizeKb ?? 0) > 1000, 'PROGRESS gives the tablespace size');
        assert.ok(sink.progressBytes > 1_000_000, `progress reported ${sink.progressBytes} bytes`);
      }

      if (compression === 'lz4') {
        await exec('lz4', ['-d', '-q', join(out, base), join(out, 'base.tar')]);
        assert.ok(result.archiveBytes < readFileSync(join(out, 'base.tar')).length, 'lz4 archive is smaller');
      }
      const listing = (await exec('tar', ['-tf', join(out, 'base.tar')], { maxBuffer: 64 << 20 })).stdout.split('\n');
      assert.ok(listing.includes('PG_VERSION'), 'PG_VERSION in the tar');
      assert.ok(listing.includes('global/pg_control'), 'global/pg_control in the tar');
      assert.ok(listing.includes('backup_label'), 'backup_label in the tar');

      const manifest = JSON.parse(readFileSync(join(out, 'backup_manifest'), 'utf8')) as {
        Files: { Path?: string; 'Checksum-Algorithm'?: string }[];
        'WAL-Ranges': { 'Start-LSN': string; 'End-LSN': string }[];
      };
      assert.ok(manifest.Files.length > 100 && manifest.Files.some((f) => f.Path === 'PG_VERSION'));
      const algorithm = compression === 'lz4' ? 'SHA256' : 'CRC32C';
      assert.ok(manifest.Files.every((f) => f['Checksum-Algorithm'] === algorithm));
      assert.equal(manifest['WAL-Ranges'].length, 1);
      assert.equal(manifest['WAL-Ranges'][0]?.['Start-LSN'], result.startLsn);

      const data = join(out, 'data');
      mkdirSync(data);
      await exec('tar', ['-xf', join(out, 'base.tar'), '-C', data]);
      writeFileSync(join(data, 'backup_manifest'), readFileSync(join(out, 'backup_manifest')));
      const v = await exec(join(BIN, 'pg_verifybackup'), ['-n', data]).catch(
        (e: { stdout: string; stderr: string }) => e,
      );
      assert.match(v.stdout, /backup successfully verified/, `pg_verifybackup: ${v.stdout}${v.stderr}`);
    }

    // A wrong password is the server's 28P01, typed.
    const wrong = connectPostgres(scramLogin(pg, { password: 'not-the-password' }));
    await assert.rejects(wrong, (e) => {
      assert.ok(e instanceof ReplicationError);
      assert.equal(e.code, 'REPL_SERVER_ERROR');
      assert.equal(e.sqlstate, '28P01');
      return true;
    });

    // The Unix socket in its directory, physical replication mode.
    const local = await connectPostgres({
      host: join(dir.path, 'pgrun'),
      port: pg.port,
      user: 'postgres',
      replication: 'true',
    });
    const [id2] = await local.query('IDENTIFY_SYSTEM');
    assert.equal(id2?.rows[0]?.[0], ident?.rows[0]?.[0], 'same system identifier');
    local.close();
  });
});
