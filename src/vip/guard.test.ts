import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { pidAlive } from '../lib/proc.js';
import { runGuard } from './guard.js';

describe('VIP guard protocol (runGuard)', () => {
  it('a hold that is not renewed in time removes the address; renewals and release keep it', async () => {
    const input = new PassThrough();
    const removed: string[] = [];
    const done = runGuard(input, (why) => void removed.push(why));
    input.write('hold 40\n');
    await delay(20);
    input.write('hold 40\n');
    await delay(30);
    assert.deepEqual(removed, [], 'renewed before the deadline');
    input.write('release\n');
    await delay(60);
    assert.deepEqual(removed, [], 'released: no deadline');
    input.write('hold 20\n');
    await delay(60);
    assert.deepEqual(removed, ['the agent did not renew its hold within 20 ms']);
    input.end();
    await done;
    assert.deepEqual(removed.slice(1), ['the agent is gone (its pipe closed)']);
  });
});

describe('VIP guard process: the agent is SIGKILLed, the guard removes the address', () => {
  it('runs `ip addr del` (a fake ip on PATH) once the agent process is gone, then exits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-vip-guard-'));
    try {
      const log = join(dir, 'ip.log');
      writeFileSync(join(dir, 'ip'), `#!/bin/sh\necho "$@" >> ${log}\n`);
      chmodSync(join(dir, 'ip'), 0o755);
      // A stand-in agent: starts the guard with a long hold and idles until killed.
      const guardModule = new URL('./guard.js', import.meta.url).href;
      const agentScript = `
        const { VipGuard } = await import(${JSON.stringify(guardModule)});
        const quiet = { debug() {}, info() {}, warn() {}, error() {}, child() { return quiet; } };
        const g = new VipGuard({ address: '10.0.0.100', prefix: 24, dev: 'eth0' }, quiet);
        g.hold(600000);
        process.stdout.write(String(g.pid) + '\\n');
        setInterval(() => {}, 1000);`;
      const agent = spawn(process.execPath, ['--input-type=module', '-e', agentScript], {
        env: { ...process.env, PATH: `${dir}:${process.env['PATH'] ?? ''}` },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const guardPid = await new Promise<number>((resolve, reject) => {
        agent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
        agent.once('exit', () => reject(new Error('the stand-in agent exited early')));
      });
      assert.ok(guardPid > 0 && pidAlive(guardPid));
      await delay(200);
      assert.throws(() => readFileSync(log, 'utf8'), 'nothing removed while the agent lives');
      agent.kill('SIGKILL');
      let text = '';
      for (let i = 0; i < 50 && !text; i++) {
        await delay(100);
        text = (() => {
          try {
            return readFileSync(log, 'utf8');
          } catch {
            return '';
          }
        })();
      }
      assert.equal(text, 'addr del 10.0.0.100/24 dev eth0\n');
      for (let i = 0; i < 30 && pidAlive(guardPid); i++) await delay(100);
      assert.equal(pidAlive(guardPid), false, 'the guard exits after removing');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
