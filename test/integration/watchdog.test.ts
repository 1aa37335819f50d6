/**
 * Watchdog wiring through real agents (docs/deploy-watchdog.md). There is no /dev/watchdog in a container, so each
 * node's `watchdog.device` is a regular file the test reads back: the leader's agent writes '1' per keepalive and
 * 'V' when it disarms; a replica's agent never writes a keepalive. (The real `wdctl` cannot set or read a regular
 * file's timeout and may write its own 'V' while trying; in `automatic` mode the agent arms anyway and warns.)
 * One cluster for the file: restarted once with the watchdog on, then a switchover and a clean stop.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, healthyStatus, leaderOf, newLeaderStatus, startCluster, type TestCluster } from '../helpers/cluster.js';

let c: TestCluster;
const names = ['node1', 'node2', 'node3'];
const deviceOf = (name: string) => join(c.dir, name, 'fake-watchdog');
const written = (name: string) => readFileSync(deviceOf(name), 'utf8');
/** Keepalives written after the last magic close (wdctl's own 'V's come before the agent's first keepalive). */
const fedSinceArmed = (name: string) => /1+$/.test(written(name));

describe('watchdog: the leader arms, feeds and disarms the device (fake device file)', () => {
  before(async () => {
    c = await startCluster({ name: 'watchdog' });
    const up = await c.up();
    assert.equal(up.code, 0, up.stderr);
    await healthyStatus(c);
    const down = await c.down();
    assert.equal(down.code, 0, down.stderr);
    for (const n of names) {
      writeFileSync(deviceOf(n), '');
      const file = join(c.dir, n, 'node.yml');
      const yml = readFileSync(file, 'utf8');
      assert.match(yml, /watchdog:\n\s+mode: off\n/, '`pgkeel up` writes watchdog.mode off');
      writeFileSync(
        file,
        yml.replace(/watchdog:\n(\s+)mode: off\n/, `watchdog:\n$1mode: automatic\n$1device: ${deviceOf(n)}\n`),
      );
    }
    const again = await c.up();
    assert.equal(again.code, 0, again.stderr);
  });
  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  it('only the leader feeds it; after a switchover the old leader has disarmed and the new one feeds', async () => {
    const s = await healthyStatus(c);
    const leader = leaderOf(s)?.name as string;
    assert.ok(leader, JSON.stringify(s));
    await c.waitFor('the leader to feed its watchdog', async () => fedSinceArmed(leader), 30_000);
    for (const n of names.filter((x) => x !== leader))
      assert.doesNotMatch(written(n), /1/, `replica ${n} never feeds the watchdog`);

    const sw = await cli(['ctl', 'switchover', '--dir', c.dir, '--force']);
    assert.equal(sw.code, 0, sw.stderr);
    const next = leaderOf(await newLeaderStatus(c, leader))?.name as string;
    assert.ok(next && next !== leader);
    await c.waitFor('the old leader to disarm with the magic V', async () => /1V$/.test(written(leader)), 30_000);
    await c.waitFor('the new leader to feed its watchdog', async () => fedSinceArmed(next), 30_000);
    const log = readFileSync(join(c.dir, next, 'agent.log'), 'utf8');
    assert.match(
      log,
      /watchdog armed, but the timeout of .* cannot be read/,
      'automatic warns about the unsafe device',
    );

    const down = await c.down();
    assert.equal(down.code, 0, down.stderr);
    assert.match(written(next), /1V$/, 'a clean stop disarms the leader watchdog');
  });
});
