import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/log.js';
import { sleep } from '../lib/proc.js';
import { runCallback } from './callbacks.js';
import type { NodeConfig } from '../config/node.js';

it('callbacks get Patroni\'s arguments: <action> <role> <scope>, with the primary called "master" as in Patroni 3', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-cb-'));
  try {
    const out = join(dir, 'calls');
    const cfg = { scope: 'batman', postgresql: { callbacks: { on_role_change: `echo >> ${out}`, on_start: `echo start >> ${out}` } } } as unknown as NodeConfig;
    runCallback({ cfg, log: silentLogger }, 'on_role_change', 'primary');
    runCallback({ cfg, log: silentLogger }, 'on_stop', 'replica'); // not configured: nothing runs
    for (let i = 0; i < 50 && !existsSync(out); i++) await sleep(20);
    for (let i = 0; i < 50 && !readFileSync(out, 'utf8').includes('\n'); i++) await sleep(20);
    assert.equal(readFileSync(out, 'utf8'), 'on_role_change master batman\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
