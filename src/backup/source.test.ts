import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterView, MemberView } from '../cluster/view.js';
import { isBackupError } from './errors.js';
import { chooseSource } from './source.js';

const member = (name: string, state: string, lag: number | null): MemberView => ({
  name,
  role: name === 'n1' ? 'leader' : 'replica',
  state,
  host: '127.0.0.1',
  port: 5432,
  api_url: '',
  timeline: 1,
  lag_bytes: lag,
  tags: {},
  pid: 1,
  data_dir: null,
  pending_restart: false,
});
const view = (...members: MemberView[]): ClusterView => ({
  scope: 's',
  leader: 'n1',
  members,
  pause: false,
  failover: null,
});

test('replica: the streaming replica with the least lag; the leader when none streams', () => {
  const v = view(member('n1', 'running', 0), member('n2', 'streaming', 500), member('n3', 'streaming', 20));
  assert.equal(chooseSource(v, 'replica').name, 'n3');
  assert.equal(chooseSource(v, 'auto').name, 'n3');
  const noReplica = view(member('n1', 'running', 0), member('n2', 'starting', null));
  assert.equal(chooseSource(noReplica, 'replica').name, 'n1');
});

test('leader and a name; refusals name the member', () => {
  const v = view(member('n1', 'running', 0), member('n2', 'streaming', 0), member('n3', 'stopped', null));
  assert.equal(chooseSource(v, 'leader').name, 'n1');
  assert.equal(chooseSource(v, 'n2').name, 'n2');
  assert.throws(() => chooseSource(v, 'n3'), /n3 is stopped/);
  assert.throws(
    () => chooseSource(v, 'n9'),
    (e: unknown) => isBackupError(e, 'BACKUP_NO_SOURCE'),
  );
  assert.throws(() => chooseSource(view(member('n1', 'stopped', 0)), 'replica'), /no streaming replica/);
});
