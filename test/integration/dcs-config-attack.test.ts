/**
 * Issue 8, finding 1 and 3 from the etcd side: someone with write access to etcd (no REST, no edit-config) writes
 * the DCS `config` key directly with `archive_command` and with a parameter name that would add a line to
 * postgresql.conf. The agent must apply the rest of the config, ignore those parameters with a warning naming them,
 * and keep PostgreSQL running with its own archive_command (pgkeel's, into the cluster's backup repository; checked
 * after a restart, which renders and applies the whole config). `ctl edit-config` refuses both. One node: what is checked is per-agent.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, healthyStatus, leaderOf, startCluster } from '../helpers/cluster.js';
import { patchDcsConfig, readCluster } from '../helpers/scenario.js';

it('a DCS config key with archive_command or an injected parameter name is ignored with a warning; PostgreSQL keeps running', async () => {
  await using c = await startCluster({ nodes: 1, name: 'dcs-attack' });
  const up = await c.up();
  assert.equal(up.code, 0, up.stderr);
  const s = await healthyStatus(c, 1);
  const port = Number(leaderOf(s)?.port ?? NaN);
  assert.ok(Number.isInteger(port), JSON.stringify(s.members));
  const setting = async (name: string) =>
    (await c.query(port, 'SELECT setting FROM pg_settings WHERE name = $1', [name]))[0]?.['setting'];
  const before = await setting('archive_command');

  const params = {
    ...(((await readCluster(s)).config?.value['postgresql'] as { parameters?: object } | undefined)?.parameters ?? {}),
  };
  await patchDcsConfig(s, {
    postgresql: {
      parameters: {
        ...params,
        archive_mode: 'on',
        archive_command: 'id > /tmp/pgkeel-pwned; true',
        'x = 1\nfsync': 'off',
        work_mem: '7MB',
      },
      use_pg_rewind: true,
      use_slots: true,
    },
  });

  // The agent applies DCS parameters when PostgreSQL (re)starts or reloads: restart it as an operator would.
  // work_mem rides in the same write, so once it shows, the agent has rendered this config.
  const restart = await cli(['ctl', 'restart', 'node1', '--force', '--dir', c.dir], 180_000);
  assert.equal(restart.code, 0, restart.stdout + restart.stderr);
  await c.waitFor('work_mem 7MB applied', async () => (await setting('work_mem')) === '7168');
  // A local cluster archives into DIR/backup: its archive_command is pgkeel's own, before and after the attack.
  assert.match(String(before), /archive-push/);
  assert.equal(await setting('archive_command'), before, 'archive_command from the DCS is not applied');
  assert.equal(await setting('archive_mode'), 'always', "the backup settings' archive_mode wins over the DCS's");
  assert.equal(await setting('fsync'), 'on');
  const conf = readFileSync(join(c.dir, 'node1', 'data', 'postgresql.pgkeel.conf'), 'utf8');
  assert.ok(!conf.includes('pgkeel-pwned') && !conf.includes('x = 1'), conf);
  assert.match(conf, /^work_mem = '7MB'$/m, 'the rest of the config still applies');

  const log = readFileSync(join(c.dir, 'node1', 'agent.log'), 'utf8');
  assert.match(
    log,
    /ignoring part of the DCS config key: postgresql\.parameters\.archive_command: CONFIG_PARAMETER_LOCAL_ONLY/,
  );
  assert.match(log, /ignoring part of the DCS config key: postgresql\.parameters\[\\"x = 1\\\\nfsync\\"\]/);
  const after = await healthyStatus(c, 1);
  assert.equal(leaderOf(after)?.state, 'running');

  // The operator's path refuses the same, naming the parameter and how to allow it; nothing is written.
  // (The attacker's keys are removed first, so each refusal below is about the new value alone.)
  await patchDcsConfig(after, { postgresql: { parameters: params, use_pg_rewind: true, use_slots: true } });
  const stored = (await readCluster(after)).config?.value;
  const ec = await cli(
    ['ctl', 'edit-config', '--set', 'postgresql.parameters.restore_command=cp /x %p', '--force', '--dir', c.dir],
    60_000,
  );
  assert.notEqual(ec.code, 0);
  assert.match(
    ec.stdout + ec.stderr,
    /restore_command.*CONFIG_PARAMETER_LOCAL_ONLY.*allow_dynamic_parameters: \[restore_command\]/s,
  );
  const nl = await cli(
    ['ctl', 'edit-config', '--set', 'postgresql.parameters.y\nfsync=off', '--force', '--dir', c.dir],
    60_000,
  );
  assert.notEqual(nl.code, 0);
  assert.match(
    nl.stdout + nl.stderr,
    /postgresql\.parameters\["y\\nfsync"\]: expected the name to be a PostgreSQL parameter name/,
  );
  assert.doesNotMatch(ec.stdout + ec.stderr + nl.stdout + nl.stderr, /archive_command|x = 1/);
  assert.deepEqual((await readCluster(after)).config?.value, stored);
});
