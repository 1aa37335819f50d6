/** pgBadger's arguments, finding it on PATH, and the report from a log written with pgkeel's prefix. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existingLogs, findOnPath, pgbadgerArgs, pgbadgerTime, runPgbadger } from './pgbadger.js';
import { ReportError } from './errors.js';
import { sinceMs } from '../../cli/report-cmd.js';

const PREFIX = '%m [%p] %q%u@%d ';

describe('pgbadgerArgs', () => {
  it('names the format, the prefix, the begin time in UTC, the output, then the logs after --', () => {
    const args = pgbadgerArgs({
      logs: ['/c/node1/postgresql.log', '/c/node2/postgresql.log'],
      prefix: PREFIX,
      since: Date.parse('2026-12-03T07:15:09.500Z'),
      out: '/tmp/r.html',
    });
    assert.deepEqual(args, [
      '--format',
      'stderr',
      '--prefix',
      PREFIX,
      '--begin',
      '2026-12-03 07:15:09',
      '--outfile',
      '/tmp/r.html',
      '--quiet',
      '--',
      '/c/node1/postgresql.log',
      '/c/node2/postgresql.log',
    ]);
    assert.ok(!pgbadgerArgs({ logs: ['x'], prefix: PREFIX, out: 'o' }).includes('--begin'));
    assert.equal(pgbadgerTime(0), '1970-01-01 00:00:00');
  });

  it('--since takes a duration back from now, an ISO time, or all', () => {
    const now = Date.parse('2026-12-03T08:00:00Z');
    assert.equal(sinceMs('1h', now), now - 3_600_000);
    assert.equal(sinceMs('24h', now), now - 86_400_000);
    assert.equal(sinceMs('2026-12-01T00:00:00Z', now), Date.parse('2026-12-01T00:00:00Z'));
    assert.equal(sinceMs('all', now), undefined);
    assert.throws(() => sinceMs('yesterday', now), /--since expects/);
  });
});

describe('running pgBadger', () => {
  it('without pgbadger on PATH: REPORT_PGBADGER_MISSING naming apt-get install pgbadger', async () => {
    assert.equal(findOnPath('pgbadger', '/nonexistent:/also-not'), null);
    await assert.rejects(
      runPgbadger({ logs: ['/x.log'], prefix: PREFIX, out: '/tmp/never.html' }, { PATH: '/nonexistent' }),
      (e: unknown) =>
        e instanceof ReportError &&
        e.code === 'REPORT_PGBADGER_MISSING' &&
        e.message.includes('apt-get install pgbadger'),
    );
  });

  it('no log at all: REPORT_NO_LOGS listing where it looked', () => {
    assert.throws(
      () => existingLogs([{ member: 'node1', file: '/nonexistent/postgresql.log', dataDir: '/nonexistent/data' }]),
      (e: unknown) =>
        e instanceof ReportError && e.code === 'REPORT_NO_LOGS' && e.message.includes('/nonexistent/postgresql.log'),
    );
  });

  it('reads a log written with pgkeel prefix: the slow statement is in the report', async (t) => {
    if (!findOnPath('pgbadger', process.env['PATH'])) return t.skip('pgbadger is not installed');
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-badger-'));
    try {
      const log = join(dir, 'postgresql.log');
      writeFileSync(
        log,
        [
          '2026-12-03 06:00:00.000 UTC [1200] app@shop LOG:  duration: 2100.000 ms  statement: SELECT old_query_marker()',
          '2026-12-03 08:00:01.123 UTC [1234] app@shop LOG:  duration: 1502.331 ms  statement: SELECT pg_sleep(1.5) AS slow_marker',
          '2026-12-03 08:00:05.000 UTC [99] LOG:  checkpoint starting: time',
          '',
        ].join('\n'),
      );
      const out = await runPgbadger({
        logs: [log],
        prefix: PREFIX,
        since: Date.parse('2026-12-03T07:00:00Z'),
        out: join(dir, 'r.html'),
      });
      const html = readFileSync(out, 'utf8');
      assert.ok(html.includes('slow_marker'), 'the slow statement is reported');
      assert.ok(!html.includes('old_query_marker'), '--begin leaves out older lines');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
