import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkTarget,
  confString,
  parseTargetTime,
  type RecoveryTarget,
  RecoveryTargetError,
  recoveryOf,
  recoverySettings,
  renderRecoveryConf,
  selectionOf,
} from './recovery.js';

const invalid = (re: RegExp) => (e: unknown) => e instanceof RecoveryTargetError && re.test(e.message);

describe('parseTargetTime', () => {
  test('ISO 8601 with a zone, keeping microseconds and the offset as given', () => {
    const p = parseTargetTime('2026-12-03 14:03:00.123456+01');
    assert.equal(p.text, '2026-12-03 14:03:00.123456+01:00');
    assert.equal(p.at.toISOString(), '2026-12-03T13:03:00.123Z');
    assert.equal(parseTargetTime('2026-12-03T14:03Z').text, '2026-12-03 14:03:00+00:00');
    assert.equal(parseTargetTime('2026-12-03T14:03:05-0530').at.toISOString(), '2026-12-03T19:33:05.000Z');
    assert.equal(parseTargetTime('2026-12-03 14:03:05 UTC').text, '2026-12-03 14:03:05+00:00');
  });

  test("what PostgreSQL's clock_timestamp()::text prints is accepted", () => {
    assert.equal(
      parseTargetTime('2026-12-03 05:25:31.901844+00').at.toISOString(),
      new Date('2026-12-03T05:25:31.901Z').toISOString(),
    );
  });

  test('a time without a zone is refused with an example', () => {
    assert.throws(() => parseTargetTime('2026-12-03 14:03:00'), invalid(/no time zone; add one/));
  });

  test('malformed and impossible times are refused', () => {
    assert.throws(() => parseTargetTime('yesterday'), invalid(/not an ISO 8601 time/));
    assert.throws(() => parseTargetTime('2026-02-30 10:00:00Z'), invalid(/not a valid date/));
    assert.throws(() => parseTargetTime('2026-12-03 24:00:00Z'), invalid(/not a valid date/));
    assert.throws(() => parseTargetTime('2026-12-03 10:00:00+16'), invalid(/beyond ±15:00/));
    assert.throws(() => parseTargetTime("2026-12-03 10:00:00+00'; DROP"), invalid(/not an ISO 8601/));
  });
});

describe('checkTarget', () => {
  test('LSNs are normalized; bad ones are refused', () => {
    assert.deepEqual(checkTarget({ kind: 'lsn', lsn: '0/3000060' }), { kind: 'lsn', lsn: '0/3000060' });
    assert.deepEqual(checkTarget({ kind: 'lsn', lsn: '1a/b374d848' }), { kind: 'lsn', lsn: '1A/B374D848' });
    for (const lsn of ['3000060', '0/', 'G/1', '0/123456789', ''])
      assert.throws(() => checkTarget({ kind: 'lsn', lsn }), invalid(/is not an LSN/), lsn);
  });

  test('xids: decimal, at least 3, up to 64 bits', () => {
    assert.deepEqual(checkTarget({ kind: 'xid', xid: '00745' }), { kind: 'xid', xid: '745' });
    assert.deepEqual(checkTarget({ kind: 'xid', xid: '4294967296123' }), { kind: 'xid', xid: '4294967296123' });
    for (const xid of ['2', '-5', '0x10', '1e3', '18446744073709551616', ''])
      assert.throws(() => checkTarget({ kind: 'xid', xid }), invalid(/not a transaction id/), xid);
  });

  test('restore point names: non-empty, at most 63 bytes, no control characters', () => {
    assert.deepEqual(checkTarget({ kind: 'name', name: "it's ok" }), { kind: 'name', name: "it's ok" });
    assert.throws(() => checkTarget({ kind: 'name', name: '' }), invalid(/empty/));
    assert.throws(() => checkTarget({ kind: 'name', name: 'é'.repeat(32) }), invalid(/longer than 63 bytes/));
    assert.throws(() => checkTarget({ kind: 'name', name: 'a\nrestore_command' }), invalid(/control character/));
  });
});

describe('recoveryOf', () => {
  test('action defaults to promote and inclusive to true; unknown actions are refused', () => {
    assert.deepEqual(recoveryOf({ kind: 'immediate' }), {
      target: { kind: 'immediate' },
      action: 'promote',
      inclusive: true,
    });
    assert.throws(() => recoveryOf({ kind: 'immediate' }, 'resume'), invalid(/not one of promote, pause, shutdown/));
  });

  test('latest cannot pause or shut down: there is no target to act at', () => {
    assert.equal(recoveryOf({ kind: 'latest' }).action, 'promote');
    assert.throws(() => recoveryOf({ kind: 'latest' }, 'pause'), invalid(/needs a target/));
  });
});

describe('recovery settings', () => {
  const cmd = "/usr/bin/node '/opt/pgkeel/main.js' archive-get --repo /backup %f %p";
  const settings = (t: RecoveryTarget, action = 'promote', inclusive = true) =>
    Object.fromEntries(recoverySettings(recoveryOf(t, action, inclusive), { restoreCommand: cmd }));

  test('each target kind sets exactly its parameter, the timeline, the action and archive_mode off', () => {
    assert.deepEqual(settings({ kind: 'time', time: '2026-12-03 14:03:00+00' }, 'pause'), {
      restore_command: `'/usr/bin/node ''/opt/pgkeel/main.js'' archive-get --repo /backup %f %p'`,
      recovery_target_time: "'2026-12-03 14:03:00+00:00'",
      recovery_target_inclusive: 'on',
      recovery_target_action: "'pause'",
      recovery_target_timeline: "'latest'",
      archive_mode: 'off',
    });
    assert.equal(settings({ kind: 'lsn', lsn: '0/3000060' }, 'promote', false)['recovery_target_inclusive'], 'off');
    assert.equal(settings({ kind: 'xid', xid: '900' })['recovery_target_xid'], "'900'");
    assert.equal(settings({ kind: 'name', name: "o'clock" })['recovery_target_name'], "'o''clock'");
    const imm = settings({ kind: 'immediate' }, 'shutdown');
    assert.equal(imm['recovery_target'], "'immediate'");
    assert.equal(imm['recovery_target_inclusive'], undefined);
    assert.equal(imm['recovery_target_action'], "'shutdown'");
    const latest = settings({ kind: 'latest' });
    assert.deepEqual(Object.keys(latest).sort(), ['archive_mode', 'recovery_target_timeline', 'restore_command']);
  });

  test('archiving kept on request', () => {
    const s = recoverySettings(recoveryOf({ kind: 'latest' }), { restoreCommand: cmd, archiving: true });
    assert.equal(
      s.some(([k]) => k === 'archive_mode'),
      false,
    );
  });

  test('values are quoted as PostgreSQL reads them back; control characters refused', () => {
    assert.equal(confString(`a'b\\c`), `'a''b\\\\c'`);
    assert.throws(() => confString('x\nrecovery_target_action = promote'), RecoveryTargetError);
    assert.throws(
      () => recoverySettings(recoveryOf({ kind: 'latest' }), { restoreCommand: 'cp %f %p\n' }),
      RecoveryTargetError,
    );
    assert.throws(() => recoverySettings(recoveryOf({ kind: 'latest' }), { restoreCommand: ' ' }), /empty/);
  });

  test('the appended block: a header, the comment, one line per setting', () => {
    const text = renderRecoveryConf(recoveryOf({ kind: 'name', name: 'rp' }), {
      restoreCommand: 'cp /a/%f %p',
      comment: 'backup 20261203-051500F',
    });
    assert.equal(
      text,
      [
        '',
        '# Added by pgkeel restore: recovery from the backup repository. Remove these lines once recovery is done.',
        '# backup 20261203-051500F',
        "restore_command = 'cp /a/%f %p'",
        "recovery_target_name = 'rp'",
        "recovery_target_action = 'promote'",
        "recovery_target_timeline = 'latest'",
        'archive_mode = off',
        '',
      ].join('\n'),
    );
    assert.throws(
      () => renderRecoveryConf(recoveryOf({ kind: 'latest' }), { restoreCommand: 'x', comment: 'a\nb' }),
      RecoveryTargetError,
    );
  });
});

test('selectionOf: time and LSN targets narrow the backup choice, others do not', () => {
  assert.deepEqual(selectionOf({ kind: 'time', time: '2026-12-03 14:03:00+01' }), {
    time: new Date('2026-12-03T13:03:00Z'),
  });
  assert.deepEqual(selectionOf({ kind: 'lsn', lsn: '1/0' }), { lsn: 0x1_0000_0000n });
  assert.deepEqual(selectionOf({ kind: 'name', name: 'x' }), {});
});
