import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applySync, ParamSet, parseOptions, syncSql, trackedName } from './params.js';

describe('session parameters', () => {
  it('maps names case-insensitively to the tracked spelling', () => {
    assert.equal(trackedName('datestyle'), 'DateStyle');
    assert.equal(trackedName('TIMEZONE'), 'TimeZone');
    assert.equal(trackedName('work_mem'), undefined);
  });

  it('generates set_config calls for differing values only, quoting literals', () => {
    const client = new ParamSet();
    const server = new ParamSet();
    client.set('application_name', "o'brien");
    client.set('TimeZone', 'UTC');
    server.set('TimeZone', 'UTC');
    assert.equal(syncSql(client, server), "SELECT pg_catalog.set_config('application_name', 'o''brien', false)");
    applySync(client, server);
    assert.equal(syncSql(client, server), null);
    assert.equal(client.key, server.key);
  });

  it('search_path is set as a raw list string', () => {
    const client = new ParamSet();
    client.set('search_path', 'app, public');
    assert.match(syncSql(client, new ParamSet()) ?? '', /set_config\('search_path', 'app, public', false\)/);
  });
});

describe('options start-up parameter', () => {
  it('accepts -c pairs of tracked parameters and refuses others', () => {
    assert.deepEqual(parseOptions('-c search_path=app\\ x -capplication_name=a --TimeZone=UTC'), [
      ['search_path', 'app x'],
      ['application_name', 'a'],
      ['TimeZone', 'UTC'],
    ]);
    assert.throws(() => parseOptions('-c work_mem=1MB'), /unsupported startup parameter in options/);
  });
});

describe('a parameter the server has and the client has not', () => {
  it('goes back to the server default (pg_settings.reset_val), and the server record forgets it', () => {
    const client = new ParamSet();
    const server = new ParamSet();
    client.set('TimeZone', 'UTC');
    server.set('TimeZone', 'UTC');
    server.set('search_path', 'other_clients_schema');
    assert.equal(
      syncSql(client, server),
      "SELECT pg_catalog.set_config('search_path', (SELECT reset_val FROM pg_catalog.pg_settings WHERE name = 'search_path'), false)",
    );
    applySync(client, server);
    assert.equal(server.get('search_path'), undefined);
    assert.equal(syncSql(client, server), null);
  });
});
