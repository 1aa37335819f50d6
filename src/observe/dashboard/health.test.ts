import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clusterHealth, type HealthInput, memberLevel } from './health.js';
import { healthVerdict } from '../status/health-verdict.js';

type M = HealthInput['members'][number];
const leader: M = { name: 'node1', role: 'leader', state: 'running', lag_bytes: 0, pending_restart: false };
const replica = (name: string, over: Partial<M> = {}): M => ({
  name,
  role: 'replica',
  state: 'streaming',
  lag_bytes: 0,
  pending_restart: false,
  ...over,
});
const base: HealthInput = {
  leader: 'node1',
  members: [leader, replica('node2'), replica('node3')],
  pause: false,
  maxLagBytes: 1024 * 1024,
  unreachable: [],
};
/** What `pgkeel status` prints for the same view. */
const statusVerdict = (h: HealthInput) =>
  healthVerdict({ leader: h.leader, members: h.members, pause: h.pause, maximumLagOnFailover: h.maxLagBytes });

describe('clusterHealth', () => {
  it('green, with the verdict `pgkeel status` prints, when the leader runs and every replica streams', () => {
    const h = clusterHealth({ ...base, members: [leader, replica('node2', { lag_bytes: 2048 }), replica('node3')] });
    assert.equal(h.level, 'ok');
    assert.equal(h.verdict, 'healthy');
    assert.equal(h.reason, 'leader node1 running with 2 streaming replicas');
    assert.deepEqual(h.problems, []);
  });

  it('the banner is the status verdict whatever the view: critical red, degraded amber', () => {
    const views: HealthInput[] = [
      { ...base, leader: null, pause: true, members: [replica('node2'), replica('node3')] },
      { ...base, members: [{ ...leader, state: 'stopped' }, replica('node2')] },
      { ...base, pause: true, members: [leader, replica('node2', { state: 'crashed' })] },
    ];
    for (const v of views) {
      const h = clusterHealth(v);
      const s = statusVerdict(v);
      assert.deepEqual({ verdict: h.verdict, reason: h.reason }, s);
      assert.equal(h.level, s.verdict === 'critical' ? 'red' : 'amber');
    }
    assert.equal(clusterHealth(views[0] as HealthInput).reason, 'no leader: nobody holds the leader key, writes fail');
  });

  it('cards: red for a replica that is down, amber for one on its way or replaying from the archive', () => {
    const h = clusterHealth({
      ...base,
      members: [
        leader,
        replica('node2', { state: 'crashed' }),
        replica('node3', { state: 'running' }),
        replica('node4', { state: 'starting' }),
      ],
    });
    assert.equal(h.level, 'amber', 'writes work: degraded, as `pgkeel status` says');
    assert.deepEqual(
      h.problems.map((p) => [p.level, p.members, p.text]),
      [
        ['red', ['node2'], 'node2 is not streaming (state: crashed)'],
        ['amber', ['node3'], 'node3 is not streaming (state: running)'],
        ['amber', ['node4'], 'node4 is not streaming (state: starting)'],
      ],
    );
    assert.equal(memberLevel(h.problems, 'node2'), 'red');
    assert.equal(memberLevel(h.problems, 'node3'), 'amber');
    assert.equal(memberLevel(h.problems, 'node1'), 'ok');
  });

  it('a leader that is not running is red on its card; pending restart colours every member it names', () => {
    const down = clusterHealth({ ...base, members: [{ ...leader, state: 'stopped' }, replica('node2')] });
    assert.equal(memberLevel(down.problems, 'node1'), 'red');
    const pending = clusterHealth({
      ...base,
      members: [{ ...leader, pending_restart: true }, replica('node2', { pending_restart: true }), replica('node3')],
    });
    assert.equal(pending.reason, 'pending restart on node1, node2');
    assert.deepEqual(
      ['node1', 'node2', 'node3'].map((n) => memberLevel(pending.problems, n)),
      ['amber', 'amber', 'ok'],
    );
  });

  it('an API not answering and archiving failing are listed in amber but leave the status verdict alone', () => {
    const h = clusterHealth({
      ...base,
      unreachable: ['node3'],
      archiveFailing: '000000010000000000000003: disk full',
    });
    assert.equal(h.verdict, 'healthy');
    assert.equal(h.level, 'ok');
    assert.deepEqual(
      h.problems.map((p) => [p.level, p.members, p.text]),
      [
        ['amber', ['node3'], "node3's REST API does not answer"],
        ['amber', [], 'WAL archiving fails: 000000010000000000000003: disk full'],
      ],
    );
    assert.equal(memberLevel(h.problems, 'node3'), 'amber');
  });

  it('the DCS not answering is critical, first in the list, whatever the last view said', () => {
    const h = clusterHealth({ ...base, dcsError: 'timeout' });
    assert.equal(h.verdict, 'critical');
    assert.equal(h.level, 'red');
    assert.equal(h.reason, 'the DCS does not answer (timeout): showing the last view it gave');
    assert.deepEqual(h.problems[0], { level: 'red', members: [], text: h.reason });
  });
});
