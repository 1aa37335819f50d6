/**
 * Finding 3 and 7 of issue 8 through the real REST server (an ApiServer over HTTP whose Agent is not running, the
 * DCS an in-memory store): PATCH/PUT /config with a parameter name that would add a line to postgresql.conf, with a
 * parameter that runs a command, or with `constructor`/`__proto__` keys is refused with 400 and nothing is written.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject } from '../config/load.js';
import { clusterKeys, encodeJson } from '../dcs/layout.js';
import { MemoryStore } from '../dcs/memory.js';
import { Agent } from '../ha/agent.js';
import { createLogger } from '../lib/log.js';
import { freePort } from '../lib/net.js';
import { actionHandlers } from './actions.js';
import { configProblems } from './actions-config.js';
import { ApiServer } from './server.js';

const keys = clusterKeys('t');
const silent = createLogger({ level: 'error', write: () => {} });
const SEEDED = { ttl: 10, loop_wait: 1, retry_timeout: 3, postgresql: { parameters: { work_mem: '4MB' } } };
type Body = { code: string; problems: Array<{ path: string; message: string; code?: string }> };

/** An API server with credentials (sent with every request), and the seeded config key. */
async function server(pg: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-api-cfg-'));
  const port = await freePort();
  const cfg = configFromObject(
    {
      scope: 't',
      name: 'node1',
      restapi: { listen: `127.0.0.1:${port}`, authentication: { username: 'admin', password: 'pw' } },
      postgresql: {
        listen: '127.0.0.1:1',
        data_dir: 'data',
        authentication: { superuser: { password: 'x' }, replication: { password: 'y' } },
        ...pg,
      },
    },
    'test',
    {},
    dir,
  );
  const store = new MemoryStore({ now: Date.now });
  const deps = { agent: new Agent(cfg, store, silent), store, keys, cfg, now: Date.now };
  const api = new ApiServer(
    deps,
    silent,
    actionHandlers(silent, { pollIntervalMs: 20, waitMs: () => 1000, reinitStartMs: 200 }),
  );
  await api.listen();
  await store.put(keys.config, encodeJson(SEEDED));
  return {
    /** Sends `text` as the body as it is, so keys like __proto__ reach the server as a client wrote them. */
    async req(method: string, text: string): Promise<{ code: number; body: Body }> {
      const headers = {
        'content-type': 'application/json',
        authorization: 'Basic ' + Buffer.from('admin:pw').toString('base64'),
      };
      const res = await fetch(`http://127.0.0.1:${port}/config`, { method, headers, body: text });
      const t = await res.text();
      return { code: res.status, body: (t.startsWith('{') ? JSON.parse(t) : { code: t, problems: [] }) as Body };
    },
    stored: async () => (await store.get(keys.config))?.value,
    async [Symbol.asyncDispose]() {
      await api.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('PATCH/PUT /config refuse configuration injection (HTTP)', () => {
  it('a parameter name with a newline: 400 naming the key path, nothing written', async () => {
    await using s = await server();
    for (const method of ['PATCH', 'PUT']) {
      const r = await s.req(method, JSON.stringify({ postgresql: { parameters: { 'x = 1\nfsync': 'off' } } }));
      assert.equal(r.code, 400, method);
      assert.equal(r.body.code, 'CONFIG_INVALID');
      assert.deepEqual(
        r.body.problems.map((p) => p.path),
        ['postgresql.parameters["x = 1\\nfsync"]'],
      );
      assert.equal(await s.stored(), encodeJson(SEEDED));
    }
    const v = await s.req('PATCH', JSON.stringify({ postgresql: { parameters: { work_mem: "8MB'\nfsync = off" } } }));
    assert.equal(v.code, 400);
    assert.match(v.body.problems[0]?.message ?? '', /control characters/);
  });

  it('archive_command and shared_preload_libraries: 400 CONFIG_PARAMETER_LOCAL_ONLY naming them and how to allow them', async () => {
    await using s = await server();
    const r = await s.req(
      'PATCH',
      JSON.stringify({
        postgresql: {
          parameters: { archive_mode: 'on', archive_command: 'id > /tmp/pwned; true', shared_preload_libraries: 'x' },
        },
      }),
    );
    assert.equal(r.code, 400);
    assert.equal(r.body.code, 'CONFIG_PARAMETER_LOCAL_ONLY');
    assert.deepEqual(
      r.body.problems.map((p) => p.path),
      ['postgresql.parameters.archive_command', 'postgresql.parameters.shared_preload_libraries'],
    );
    assert.match(r.body.problems[0]?.message ?? '', /allow_dynamic_parameters: \[archive_command\]/);
    const put = await s.req(
      'PUT',
      JSON.stringify({ ttl: 30, postgresql: { parameters: { restore_command: 'cp x y' } } }),
    );
    assert.equal(put.code, 400);
    assert.equal(await s.stored(), encodeJson(SEEDED), 'nothing written');
  });

  it("archive_command is accepted when this node's local file allows it", async () => {
    await using s = await server({ allow_dynamic_parameters: ['archive_command'] });
    const r = await s.req('PATCH', JSON.stringify({ postgresql: { parameters: { archive_command: '/bin/true' } } }));
    assert.equal(r.code, 200);
    assert.match((await s.stored()) ?? '', /archive_command/);
  });

  it('constructor, __proto__ and toString keys: 400 unknown key, nothing written', async () => {
    await using s = await server();
    for (const text of [
      '{"constructor":{"prototype":{"x":1}}}',
      '{"__proto__":{"ttl":99}}',
      '{"toString":1}',
      '{"postgresql":{"constructor":{"prototype":1}}}',
      '{"postgresql":{"parameters":{"__proto__":"x"}}}',
    ]) {
      const r = await s.req('PATCH', text);
      assert.equal(r.code, 400, text);
      assert.ok(
        r.body.problems.some((p) => /unknown key|reserved name/.test(p.message)),
        `${text}: ${JSON.stringify(r.body)}`,
      );
      assert.equal(await s.stored(), encodeJson(SEEDED), text);
    }
  });
});

describe('configProblems (the validator PATCH/PUT and ctl edit-config go through)', () => {
  it('names every local-only parameter even when something else is wrong too', () => {
    const p = configProblems({
      ttl: 'soon',
      postgresql: { parameters: { ssl_passphrase_command: 'x', DYNAMIC_LIBRARY_PATH: '/tmp' } },
    });
    assert.deepEqual(
      p.map((x) => x.path),
      ['ttl', 'postgresql.parameters.ssl_passphrase_command', 'postgresql.parameters.DYNAMIC_LIBRARY_PATH'],
    );
    assert.ok(p.slice(1).every((x) => x.code === 'CONFIG_PARAMETER_LOCAL_ONLY'));
  });

  it('allows what the node lists (case-insensitively)', () => {
    assert.deepEqual(configProblems({ postgresql: { parameters: { Archive_Command: 'x' } } }, ['ARCHIVE_COMMAND']), []);
  });
});
