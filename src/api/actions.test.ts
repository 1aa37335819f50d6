/**
 * The unsafe endpoints over real HTTP against an ApiServer whose Agent is not running: the DCS is an in-memory
 * store the test plays the other agents on (it moves the leader key as a switching agent would).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clusterKeys, encodeJson } from '../dcs/layout.js';
import type { MemoryStore } from '../dcs/memory.js';
import type { Store } from '../dcs/store.js';
import { fixture } from './api-fixture.js';
import { sleep } from '../../test/helpers/wait.js';

const keys = clusterKeys('t');

const rec = (role: string, port: number) =>
  encodeJson({
    conn_url: `postgres://127.0.0.1:${port}/postgres`,
    api_url: `http://127.0.0.1:${port + 10}/patroni`,
    state: 'running',
    role,
  });

async function seed(s: MemoryStore, leader: string | null = 'node1'): Promise<void> {
  await s.put(keys.config, encodeJson({ ttl: 10, loop_wait: 1, retry_timeout: 3, postgresql: { parameters: {} } }));
  if (leader) await s.put(keys.leader, leader);
  await s.put(keys.member('node1'), rec(leader === 'node1' ? 'master' : 'replica', 5001));
  await s.put(keys.member('node2'), rec('replica', 5002));
  await s.put(keys.member('node3'), rec('replica', 5003));
}

/** Plays the agents: once `/failover` appears, hands the leader key to `to` and clears the request. */
async function actAsAgents(s: MemoryStore, to: string | null): Promise<string | null> {
  for (let i = 0; i < 200; i++) {
    const request = await s.get(keys.failover);
    if (request) {
      if (to) await s.put(keys.leader, to);
      await s.delete(keys.failover);
      return request.value;
    }
    await sleep(10);
  }
  throw new Error('no /failover request was written');
}

describe('REST unsafe endpoints', () => {
  it('401 without or with wrong credentials when restapi.authentication is set; health checks stay open', async () => {
    await using f = await fixture({ auth: true });
    await seed(f.store);
    for (const [method, path] of [
      ['POST', '/switchover'],
      ['PATCH', '/config'],
      ['POST', '/restart'],
      ['DELETE', '/switchover'],
    ] as const) {
      const r = await f.req(method, path, { leader: 'node1' });
      assert.equal(r.code, 401, `${method} ${path}`);
      assert.equal((await f.req(method, path, { leader: 'node1' }, 'admin:wrong')).code, 401);
    }
    assert.equal((await f.req('POST', '/reload', {}, 'admin:s3cret')).code, 202);
    assert.equal((await f.req('GET', '/patroni')).code, 200);
  });

  it("switchover: 200 once another member holds the key; the /failover value is Patroni's", async () => {
    await using f = await fixture();
    await seed(f.store);
    // The request the "agents" saw (a separate watcher could miss the key: they delete it once they act on it).
    const agents = actAsAgents(f.store, 'node2');
    const r = await f.req('POST', '/switchover', { leader: 'node1', candidate: 'node2', scheduled_at: null });
    const seen = await agents;
    assert.deepEqual([r.code, r.text], [200, 'Successfully switched over to "node2"']);
    assert.deepEqual(JSON.parse(seen ?? '{}'), { leader: 'node1', member: 'node2' });
  });

  it('failover with no leader: 200 when the candidate takes the key', async () => {
    await using f = await fixture();
    await seed(f.store, null);
    const agents = actAsAgents(f.store, 'node3');
    const r = await f.req('POST', '/failover', { candidate: 'node3' });
    await agents;
    assert.deepEqual([r.code, r.text], [200, 'Successfully failed over to "node3"']);
  });

  it('503 "failed" when the request is cleared without a new leader, "status unknown" when nothing happens', async () => {
    {
      await using f = await fixture();
      await seed(f.store);
      const agents = actAsAgents(f.store, null);
      const r = await f.req('POST', '/switchover', { leader: 'node1' });
      await agents;
      assert.deepEqual([r.code, r.text], [503, 'Switchover failed']);
    }
    {
      await using f = await fixture({ waitMs: 200 });
      await seed(f.store);
      const r = await f.req('POST', '/switchover', { leader: 'node1' });
      assert.deepEqual([r.code, r.text], [503, 'Switchover status unknown']);
      assert.ok(await f.store.get(keys.failover), 'the request stays for the agents');
      // A second request while one is pending is refused.
      const again = await f.req('POST', '/switchover', { leader: 'node1', candidate: 'node3' });
      assert.equal(again.code, 409);
      assert.match(again.text, /already pending/);
    }
  });

  it('412 with the reason when not possible; 400 on a malformed body', async () => {
    await using f = await fixture();
    await seed(f.store);
    const r = await f.req('POST', '/switchover', { leader: 'node2', candidate: 'node3' });
    assert.equal(r.code, 412);
    assert.match(r.text, /leader name does not match/);
    assert.equal((await f.req('POST', '/switchover', { candidate: 'node3' })).code, 400);
    assert.equal(await f.store.get(keys.failover), undefined, 'nothing written on a refusal');
  });

  it('scheduled switchover: 202, listed in the key, DELETE 200 then 404', async () => {
    await using f = await fixture();
    await seed(f.store);
    const at = new Date(Date.now() + 3600_000).toISOString();
    const r = await f.req('POST', '/switchover', { leader: 'node1', candidate: 'node2', scheduled_at: at });
    assert.deepEqual([r.code, r.text], [202, 'Switchover scheduled']);
    const v = JSON.parse((await f.store.get(keys.failover))?.value ?? '{}') as Record<string, string>;
    assert.equal(v['member'], 'node2');
    assert.equal(Date.parse(v['scheduled_at'] ?? ''), Date.parse(at));
    assert.match(v['scheduled_at'] ?? '', /\+00:00$/);
    assert.deepEqual(Object.values(await f.req('DELETE', '/switchover')), [200, 'scheduled switchover deleted']);
    assert.equal(await f.store.get(keys.failover), undefined);
    assert.deepEqual(Object.values(await f.req('DELETE', '/switchover')), [404, 'no switchover is scheduled']);
  });

  it('PATCH /config: merge patch round trip, 400 listing problems, 503 without config, 409 on a concurrent change', async () => {
    await using f = await fixture();
    assert.equal((await f.req('PATCH', '/config', { ttl: 20 })).code, 503);
    await seed(f.store);
    const r = await f.req('PATCH', '/config', {
      ttl: 20,
      postgresql: { parameters: { work_mem: '8MB' } },
      pause: true,
    });
    assert.equal(r.code, 200, r.text);
    const expected = {
      ttl: 20,
      loop_wait: 1,
      retry_timeout: 3,
      postgresql: { parameters: { work_mem: '8MB' } },
      pause: true,
    };
    assert.deepEqual(JSON.parse(r.text), expected);
    assert.deepEqual(JSON.parse((await f.store.get(keys.config))?.value ?? ''), expected);
    const del = await f.req('PATCH', '/config', { pause: null });
    assert.equal(JSON.parse(del.text)['pause'], undefined);

    const bad = await f.req('PATCH', '/config', { ttl: 'soon', loop_wiat: 2 });
    assert.equal(bad.code, 400);
    const body = JSON.parse(bad.text) as { code: string; problems: Array<{ path: string; message: string }> };
    assert.equal(body.code, 'CONFIG_INVALID');
    assert.deepEqual(body.problems.map((p) => p.path).sort(), ['loop_wiat', 'ttl']);
    assert.match(body.problems.find((p) => p.path === 'loop_wiat')?.message ?? '', /did you mean "loop_wait"/);
    assert.equal(
      JSON.parse((await f.store.get(keys.config))?.value ?? '')['ttl'],
      20,
      'an invalid patch writes nothing',
    );
  });

  it('PATCH /config answers 409 when the key changes between read and write', async () => {
    const racing = (s: MemoryStore): Store =>
      new Proxy(s, {
        get(target, prop, recv) {
          if (prop !== 'get') return Reflect.get(target, prop, recv) as unknown;
          return async (key: string) => {
            const kv = await target.get(key);
            if (key === keys.config) await target.put(keys.config, encodeJson({ ttl: 30 })); // another writer
            return kv;
          };
        },
      });
    await using f = await fixture({ store: racing });
    await seed(f.store);
    const r = await f.req('PATCH', '/config', { ttl: 20 });
    assert.equal(r.code, 409, r.text);
  });

  it('PUT /config replaces the value after validation', async () => {
    await using f = await fixture();
    await seed(f.store);
    assert.equal((await f.req('PUT', '/config', { ttl: 3 })).code, 400);
    const r = await f.req('PUT', '/config', { ttl: 30, loop_wait: 5 });
    assert.equal(r.code, 200);
    assert.deepEqual(JSON.parse((await f.store.get(keys.config))?.value ?? ''), { ttl: 30, loop_wait: 5 });
  });

  it("restart: schedules and unknown filters are refused with Patroni's texts", async () => {
    await using f = await fixture();
    await seed(f.store);
    assert.deepEqual(Object.values(await f.req('POST', '/restart', { schedule: '2030-01-01T00:00:00Z' })), [
      400,
      'scheduled restarts are not supported yet',
    ]);
    assert.deepEqual(Object.values(await f.req('POST', '/restart', { foo: 1 })), [
      400,
      'Unknown filter for the scheduled restart: foo',
    ]);
    assert.deepEqual(Object.values(await f.req('POST', '/restart', { role: 'boss' })), [
      400,
      'PostgreSQL role should be either primary or replica',
    ]);
    assert.deepEqual(Object.values(await f.req('POST', '/reload')), [202, 'reload scheduled']);
  });
});
