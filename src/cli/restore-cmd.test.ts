import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from './args.js';
import { runRestoreCommand, targetFromFlags } from './restore-cmd.js';

test('targetFromFlags: one target flag, none meaning latest', () => {
  assert.deepEqual(targetFromFlags({}), { kind: 'latest' });
  assert.deepEqual(targetFromFlags({ 'target-lsn': '0/3000060' }), { kind: 'lsn', lsn: '0/3000060' });
  assert.deepEqual(targetFromFlags({ 'target-name': 'rp' }), { kind: 'name', name: 'rp' });
  assert.deepEqual(targetFromFlags({ target: 'immediate' }), { kind: 'immediate' });
  assert.throws(() => targetFromFlags({ target: 'latest' }), /accepts only "immediate"/);
  assert.throws(() => targetFromFlags({ 'target-xid': '9', 'target-name': 'rp' }), /at most one recovery target/);
});

test('usage errors are refused before the repository is opened', async () => {
  const usage = (re: RegExp) => (e: unknown) => e instanceof UsageError && re.test(e.message);
  await assert.rejects(runRestoreCommand(['--repo', '/nonexistent']), usage(/needs --to/));
  await assert.rejects(runRestoreCommand(['--to', '/nonexistent/x']), usage(/needs --repo/));
  const base = ['--to', '/nonexistent/x', '--repo', '/nonexistent/r'];
  await assert.rejects(runRestoreCommand([...base, '--start']), usage(/--start needs --port/));
  await assert.rejects(runRestoreCommand([...base, '--port', '5999']), usage(/--port is for --start/));
  await assert.rejects(runRestoreCommand([...base, '--target-time', '2026-12-03 14:03']), usage(/no time zone/));
  await assert.rejects(runRestoreCommand([...base, '--target-lsn', 'nope']), usage(/is not an LSN/));
  await assert.rejects(runRestoreCommand([...base, '--target-action', 'pause']), usage(/needs a target/));
  await assert.rejects(runRestoreCommand([...base, '--target-tme', 'x']), usage(/did you mean --target-time/));
});
