import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkPidFile,
  formatPidFile,
  hasOption,
  judgePid,
  parseCmdline,
  parsePidFile,
  parseProcStat,
  procInfo,
  startTimeOf,
} from './pid-identity.js';

// A real /proc/<pid>/stat line whose command name holds spaces and parentheses; field 22 (starttime) is 8675309.
const STAT =
  '4242 (pg (keel) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 10 5 0 0 20 0 1 0 8675309 1234567 890 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0';

it('parseProcStat: the state (field 3) and start time (field 22), counting after the last ")"', () => {
  assert.deepEqual(parseProcStat(STAT), { state: 'S', startTime: '8675309' });
  assert.deepEqual(parseProcStat(STAT.replace(') S ', ') Z ')), { state: 'Z', startTime: '8675309' });
  assert.equal(parseProcStat('garbage'), null);
  assert.equal(parseProcStat('1 (x) S 1 2'), null, 'too few fields');
});

it('parseCmdline and hasOption: NUL-separated argv; "-c FILE" or "--flag=value"', () => {
  const argv = parseCmdline('/usr/bin/node\0/x/dist/src/cli/main.js\0agent\0-c\0/d/node1/node.yml\0');
  assert.deepEqual(argv, ['/usr/bin/node', '/x/dist/src/cli/main.js', 'agent', '-c', '/d/node1/node.yml']);
  assert.equal(hasOption(argv, '-c', '/d/node1/node.yml'), true);
  assert.equal(hasOption(argv, '-c', '/d/node2/node.yml'), false);
  assert.equal(hasOption(['etcd', '--data-dir=/d/etcd/data'], '--data-dir', '/d/etcd/data'), true);
});

it('pid files: "<pid>\\n<starttime>\\n"; an older file with only the pid has no start time', () => {
  assert.deepEqual(parsePidFile(formatPidFile(123, '456')), { pid: 123, startTime: '456' });
  assert.deepEqual(parsePidFile('123\n'), { pid: 123, startTime: null });
  assert.equal(parsePidFile('-1\n'), null);
  assert.equal(parsePidFile('abc'), null);
});

it('judgePid: ours only when the start time (if recorded) and the command line both match', () => {
  const agent = (argv: readonly string[]) => argv.includes('agent') && hasOption(argv, '-c', '/d/node1/node.yml');
  const running = { startTime: '500', zombie: false, argv: ['node', 'main.js', 'agent', '-c', '/d/node1/node.yml'] };
  assert.deepEqual(judgePid(null, null, agent, 'x'), { kind: 'none' });
  assert.deepEqual(judgePid({ pid: 7, startTime: '500' }, null, agent, 'x'), { kind: 'dead', pid: 7 });
  assert.deepEqual(judgePid({ pid: 7, startTime: '500' }, { ...running, zombie: true }, agent, 'x'), {
    kind: 'dead',
    pid: 7,
  });
  assert.deepEqual(judgePid({ pid: 7, startTime: '500' }, running, agent, 'x'), { kind: 'ours', pid: 7 });
  assert.deepEqual(
    judgePid({ pid: 7, startTime: null }, running, agent, 'x'),
    { kind: 'ours', pid: 7 },
    'an older pid file: command line only',
  );
  const reused = judgePid({ pid: 7, startTime: '499' }, running, agent, "node1's agent");
  assert.equal(reused.kind, 'foreign', 'same command line, other start time: the pid was reused');
  assert.match(
    (reused as { reason: string }).reason,
    /process 7, which is not node1's agent: it started at tick 500, not at tick 499/,
  );
  const sleeper = judgePid(
    { pid: 7, startTime: null },
    { startTime: '9', zombie: false, argv: ['sleep', '300'] },
    agent,
    "node1's agent",
  );
  assert.deepEqual(sleeper, {
    kind: 'foreign',
    pid: 7,
    reason: "process 7, which is not node1's agent (it runs: sleep 300)",
  });
});

it('checkPidFile against /proc: a live child we started is ours; the same pid file naming another command is foreign', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-pid-'));
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    const pid = child.pid as number;
    assert.equal(procInfo(pid)?.startTime, startTimeOf(pid));
    const file = join(dir, 'x.pid');
    writeFileSync(file, formatPidFile(pid, startTimeOf(pid)));
    const isSleep = (argv: readonly string[]) => argv[0] === 'sleep';
    assert.deepEqual(checkPidFile(file, isSleep, 'the sleeper'), { kind: 'ours', pid });
    assert.equal(checkPidFile(file, (argv) => argv.includes('agent'), 'an agent').kind, 'foreign');
    writeFileSync(file, formatPidFile(pid, '1'));
    assert.equal(checkPidFile(file, isSleep, 'the sleeper').kind, 'foreign');
    assert.deepEqual(checkPidFile(join(dir, 'missing.pid'), isSleep, 'x'), { kind: 'none' });
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
