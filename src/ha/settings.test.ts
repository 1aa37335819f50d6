/**
 * The DCS `config` key as an attacker with etcd access writes it: the agent applies what it may, drops the rest
 * one parameter at a time, and says what it dropped.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configFromObject } from '../config/load.js';
import type { Cluster } from '../dcs/layout.js';
import { effectiveDynamic } from './settings.js';

const cfg = (pg: Record<string, unknown> = {}) =>
  configFromObject(
    {
      scope: 's',
      name: 'n1',
      postgresql: {
        data_dir: '/d',
        authentication: { superuser: { password: 's' }, replication: { password: 'r' } },
        ...pg,
      },
    },
    't',
    {},
    '/',
  );
const clusterWith = (value: Record<string, unknown>) => ({ config: { value, modRevision: 1 } }) as unknown as Cluster;

describe('effectiveDynamic: DCS parameters an agent will not apply', () => {
  it('drops local-only parameters (any case) with a CONFIG_PARAMETER_LOCAL_ONLY problem, keeps the rest', () => {
    const dcs = {
      ttl: 20,
      postgresql: {
        parameters: {
          archive_mode: 'on',
          archive_command: 'id > /tmp/pwned; true',
          Shared_Preload_Libraries: 'x',
          work_mem: '8MB',
        },
      },
    };
    const { config, problems } = effectiveDynamic(cfg(), clusterWith(dcs));
    assert.deepEqual(config.postgresql.parameters, { archive_mode: 'on', work_mem: '8MB' });
    assert.equal(config.ttl, 20);
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(
      problems[0] as string,
      /^postgresql\.parameters\.archive_command: CONFIG_PARAMETER_LOCAL_ONLY: archive_command runs a shell command/,
    );
    assert.match(
      problems[1] as string,
      /^postgresql\.parameters\.Shared_Preload_Libraries: CONFIG_PARAMETER_LOCAL_ONLY/,
    );
  });

  it('applies a local-only parameter the node allows', () => {
    const { config, problems } = effectiveDynamic(
      cfg({ allow_dynamic_parameters: ['archive_command'] }),
      clusterWith({ postgresql: { parameters: { archive_command: '/bin/true' } } }),
    );
    assert.deepEqual(problems, []);
    assert.equal(config.postgresql.parameters['archive_command'], '/bin/true');
  });

  it('drops malformed names and values (newline, reserved names) one by one, keeping the valid ones and the other settings', () => {
    const params = JSON.parse(
      '{"x = 1\\nfsync":"off","constructor":"x","work_mem":"8MB\\nfsync = off","max_connections":50}',
    );
    const { config, problems } = effectiveDynamic(
      cfg(),
      clusterWith({ loop_wait: 2, postgresql: { parameters: params } }),
    );
    assert.deepEqual(config.postgresql.parameters, { max_connections: 50 });
    assert.equal(config.loop_wait, 2);
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.ok(
      problems.every((p) => !p.includes('\n')),
      'each problem is one line',
    );
  });

  it('ignores a __proto__ or constructor key at the top of the config', () => {
    const { config, problems } = effectiveDynamic(
      cfg(),
      clusterWith(JSON.parse('{"__proto__":{"ttl":99},"constructor":{"prototype":{"x":1}},"ttl":12}')),
    );
    assert.equal(config.ttl, 12);
    assert.deepEqual(problems, []);
    assert.equal(({} as Record<string, unknown>)['x'], undefined);
  });
});
