import { it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/log.js';
import { sleep } from '../lib/proc.js';
import { runCallback } from './callbacks.js';
import type { NodeConfig } from '../config/node.js';

it('callbacks get Patroni\'s arguments: <action> <role> <scope>, with the primary called "master" as in Patroni 3', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-cb-'));
  chmodSync(dir, 0o777); // the callback runs as the postgres OS user when the tests run as root
  try {
    const out = join(dir, 'calls');
    const cfg = {
      scope: 'batman',
      postgresql: { callbacks: { on_role_change: `echo >> ${out}`, on_start: `echo start >> ${out}` } },
    } as unknown as NodeConfig;
    runCallback({ cfg, log: silentLogger }, 'on_role_change', 'primary');
    runCallback({ cfg, log: silentLogger }, 'on_stop', 'replica'); // not configured: nothing runs
    for (let i = 0; i < 50 && !existsSync(out); i++) await sleep(20);
    for (let i = 0; i < 50 && !readFileSync(out, 'utf8').includes('\n'); i++) await sleep(20);
    assert.equal(readFileSync(out, 'utf8'), 'on_role_change master batman\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

async function whoRuns(extra: Record<string, unknown>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-cb-'));
  chmodSync(dir, 0o777);
  try {
    const out = join(dir, 'who');
    const cfg = {
      scope: 's',
      postgresql: { callbacks: { on_start: `id -un > ${out}; true` }, ...extra },
    } as unknown as NodeConfig;
    runCallback({ cfg, log: silentLogger }, 'on_start', 'replica');
    for (let i = 0; i < 100 && !(existsSync(out) && readFileSync(out, 'utf8').endsWith('\n')); i++) await sleep(20);
    return readFileSync(out, 'utf8').trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

it('as root, callbacks run as the postgres OS user; postgresql.callbacks_as_root: true keeps root', {
  skip: !asRoot && 'needs root',
}, async () => {
  assert.equal(await whoRuns({ callbacks_as_root: false }), 'postgres');
  assert.equal(await whoRuns({ callbacks_as_root: true }), 'root');
});
