import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBackupError } from './errors.js';
import { viewMember, viewOf } from './fixture.js';
import { chooseSource } from './source.js';

const member = viewMember;
const view = viewOf;

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
