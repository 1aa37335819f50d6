import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from './args.js';
import { DRILL_FLAGS, drillJson, drillOptions, leaderLogin, roundLine, summaryText } from './drill-cmd.js';
import type { DrillError } from '../drill/errors.js';
import type { RoundResult } from '../drill/measure.js';

const flags = (...argv: string[]) => parseArgs(argv, DRILL_FLAGS).flags;
const usage = (re: RegExp) => (e: DrillError) => e.code === 'DRILL_USAGE' && e.exit === 2 && re.test(e.message);

describe('pgkeel drill arguments', () => {
  it('defaults: one round, 120 s to heal, fault length from the ttl', () => {
    assert.deepEqual(drillOptions(flags('--scenario', 'kill-leader')), {
      scenario: 'kill-leader',
      rounds: 1,
      healTimeoutMs: 120_000,
      faultSeconds: null,
    });
    assert.deepEqual(
      drillOptions(
        flags('--scenario', 'partition-leader', '--rounds', '3', '--heal-timeout', '60', '--fault-seconds', '25'),
      ),
      { scenario: 'partition-leader', rounds: 3, healTimeoutMs: 60_000, faultSeconds: 25 },
    );
  });

  it('refuses bad values, naming the flag (exit 2)', () => {
    assert.throws(() => drillOptions(flags()), usage(/--scenario is required/));
    assert.throws(() => drillOptions(flags('--scenario', 'kill')), usage(/--scenario must be one of kill-leader/));
    assert.throws(
      () => drillOptions(flags('--scenario', 'switchover', '--rounds', '0')),
      usage(/--rounds must be from 1/),
    );
    assert.throws(
      () => drillOptions(flags('--scenario', 'switchover', '--heal-timeout', '-5')),
      usage(/--heal-timeout must be from 1/),
    );
    assert.throws(
      () => drillOptions(flags('--scenario', 'switchover', '--fault-seconds', '20')),
      usage(/--fault-seconds is for kill-leader and partition-leader/),
    );
    assert.throws(() => flags('--round', '2'), /unknown option --round \(did you mean --rounds\?\)/);
  });

  it('following the leader needs database credentials: --etcd and a ctl config have none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-drill-'));
    try {
      const noCreds = (e: DrillError) => e.code === 'DRILL_NO_CREDENTIALS' && e.exit === 2 && /--dsn/.test(e.message);
      assert.throws(() => leaderLogin(flags('--etcd', '127.0.0.1:2379', '--scope', 'x')), noCreds);
      const ctl = join(dir, 'ctl.yml');
      writeFileSync(ctl, 'scope: prod\netcd3:\n  hosts: [127.0.0.1:2379]\n');
      assert.throws(() => leaderLogin(flags('-c', ctl)), noCreds);
      assert.throws(() => leaderLogin(flags('--dir', join(dir, 'none'))), usage(/--dir .*no pgkeel cluster/));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const r: RoundResult = {
  round: 1,
  scenario: 'kill-leader',
  oldLeader: 'node2',
  newLeader: 'node1',
  healed: true,
  healMs: 23_200,
  note: '',
  rtoMs: 10_882,
  acked: 691,
  lost: 0,
  rpoMs: 0,
  lostIds: [],
};

describe('pgkeel drill output', () => {
  it('one line per round in plain words', () => {
    assert.equal(
      roundLine(r, 1),
      'round 1/1 kill-leader: leader node2 -> node1; RTO 10882 ms; lost 0 of 691 acknowledged writes (RPO 0 ms); healed 23.2 s after the fault',
    );
    assert.match(
      roundLine(
        {
          ...r,
          healed: false,
          healMs: null,
          rtoMs: null,
          note: 'not healed within 120 s: member node2 does not answer',
        },
        2,
      ),
      /no write after the fault; .*NOT healed: not healed within 120 s: member node2 does not answer/,
    );
  });

  it('the summary and the JSON say the same', () => {
    const run = { members: ['node1', 'node2', 'node3'], synchronous: false, faultSeconds: 20, rounds: [r] };
    const text = summaryText(run, 'kill-leader', 0);
    assert.match(text, /healed\s+1\/1 rounds/);
    assert.match(text, /RTO median\s+10882 ms/);
    assert.match(text, /result\s+PASS/);
    const j = drillJson(run, 'kill-leader', 0) as {
      summary: Record<string, unknown>;
      rounds: Record<string, unknown>[];
    };
    assert.deepEqual(j.summary, {
      rounds: 1,
      healed: 1,
      median_rto_ms: 10882,
      max_rto_ms: 10882,
      lost: 0,
      max_rpo_ms: 0,
    });
    assert.equal(j.rounds[0]?.['new_leader'], 'node1');
  });
});
