import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { pidAlive, sleep } from './proc.js';

it('pidAlive: a running process is alive; a killed one that nobody reaped (a zombie) is not', async () => {
  // sh starts a grandchild, prints its pid and stops itself: the grandchild, once killed, stays a zombie because
  // its stopped parent cannot reap it — what a SIGKILLed postmaster looks like where PID 1 does not reap orphans.
  const sh = spawn('sh', ['-c', 'sleep 30 & echo $!; kill -STOP $$'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const [chunk] = (await once(sh.stdout, 'data')) as [Buffer];
    const grandchild = Number(chunk.toString().trim());
    assert.equal(pidAlive(grandchild), true);
    process.kill(grandchild, 'SIGKILL');
    await sleep(200);
    assert.equal(pidAlive(grandchild), false);
  } finally {
    sh.kill('SIGKILL');
  }
  assert.equal(pidAlive(-1), false);
  assert.equal(pidAlive(0), false);
});
