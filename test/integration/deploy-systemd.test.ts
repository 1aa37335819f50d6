/**
 * The systemd units in packaging/systemd/ pass `systemd-analyze verify` with no warning at all (it only warns about
 * an unknown key or a bad value, with exit 0, so the test also asserts an empty output), and say what
 * docs/deploy.md promises: restart on failure, readiness by `pgkeel ready`, SIGTERM to the agent alone, `pgkeel
 * fence` when the agent died.
 * ExecStart's /usr/bin/pgkeel does not exist here: the test verifies copies whose program is this node binary.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

const UNITS = ['pgkeel-agent@.service', 'pgkeel-proxy@.service'];
const unitText = (u: string) => readFileSync(join(repoRoot, 'packaging', 'systemd', u), 'utf8');
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

/** `Key=value` lines of the [Service] section. */
function service(text: string): Map<string, string[]> {
  const section = text.split(/^\[Service\]$/m)[1]?.split(/^\[/m)[0] ?? '';
  const m = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    const hit = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (hit) m.set(hit[1] as string, [...(m.get(hit[1] as string) ?? []), hit[2] as string]);
  }
  return m;
}

describe('systemd units', () => {
  it('pass systemd-analyze verify without a warning', {
    skip: !hasAnalyze && 'systemd-analyze is not installed',
  }, async () => {
    await using dir = await tempDir('systemd');
    const copy = (u: string) => unitText(u).replaceAll('/usr/bin/pgkeel', process.execPath);
    const files = UNITS.map((u) => {
      const f = join(dir.path, u.replace('@.', '@prod.'));
      writeFileSync(f, copy(u));
      return f;
    });
    const r = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' });
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no warning');
    assert.equal(r.status, 0);
    // The check can fail: a misspelt key is reported.
    writeFileSync(files[0] as string, copy(UNITS[0] as string).replace(/^KillMode=mixed$/m, 'KillMod=mixed'));
    const bad = spawnSync('systemd-analyze', ['verify', files[0] as string], { encoding: 'utf8' });
    assert.match(bad.stderr, /Unknown key 'KillMod'/);
  });

  it('agent: its config by instance name, ready by /liveness, restart on failure, SIGTERM to the agent alone, fence when it died', () => {
    const s = service(unitText('pgkeel-agent@.service'));
    assert.deepEqual(s.get('ExecStart'), ['/usr/bin/pgkeel agent -c /etc/pgkeel/%i.yml']);
    assert.deepEqual(s.get('ExecStartPost'), ['/usr/bin/pgkeel ready -c /etc/pgkeel/%i.yml --timeout 90']);
    assert.deepEqual(s.get('Type'), ['exec']);
    assert.deepEqual(s.get('Restart'), ['on-failure']);
    assert.deepEqual(s.get('KillMode'), ['mixed']);
    assert.deepEqual(s.get('KillSignal'), ['SIGTERM']);
    // Only when the agent is already gone: fence its PostgreSQL ($$ is a literal $ for the shell).
    assert.deepEqual(s.get('ExecStop'), [
      `/bin/sh -c '[ -n "$$MAINPID" ] || exec /usr/bin/pgkeel fence -c /etc/pgkeel/%i.yml'`,
    ]);
    assert.ok(Number(s.get('TimeoutStopSec')?.[0]) >= 60, 'long enough for a handover and a shutdown checkpoint');
    assert.ok(Number(s.get('TimeoutStartSec')?.[0]) > 90, "longer than `pgkeel ready`'s own timeout");
  });

  it('proxy: its config by instance name, reload by SIGHUP, restart on failure', () => {
    const s = service(unitText('pgkeel-proxy@.service'));
    assert.deepEqual(s.get('ExecStart'), ['/usr/bin/pgkeel proxy -c /etc/pgkeel/%i-proxy.yml']);
    assert.deepEqual(s.get('ExecReload'), ['/bin/kill -HUP $MAINPID']);
    assert.deepEqual(s.get('Restart'), ['on-failure']);
    assert.deepEqual(s.get('KillMode'), ['mixed']);
  });
});
