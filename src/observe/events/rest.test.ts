/** GET /events on the agent's REST API, over real HTTP with a fake agent (src/api/ports.ts AgentPort). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer } from '../../api/server.js';
import type { AgentPort } from '../../api/ports.js';
import { testNodeConfig } from '../../api/api-fixture.js';
import { clusterKeys } from '../../dcs/layout.js';
import { MemoryStore } from '../../dcs/memory.js';
import type { AgentSnapshot } from '../../ha/agent.js';
import { newMemory } from '../../ha/state.js';
import { silentLogger } from '../../lib/log.js';
import { freePort } from '../../lib/net.js';
import { EventRecorder } from './recorder.js';

const NOW = Date.parse('2026-12-03T09:00:00Z');

describe('GET /events', () => {
  it('all kept events oldest first; since as epoch ms, ISO-8601 or a duration; 400 for anything else', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-events-rest-'));
    const port = await freePort();
    const cfg = testNodeConfig(dir, port);
    const rec = new EventRecorder({ log: silentLogger, file: null });
    rec.record(
      [-3600, -600, -30].map((s) => ({
        at: NOW + s * 1000,
        member: 'node1',
        timeline: 2,
        kind: 'restart' as const,
        reason: `${s}`,
        details: { observer: 'node1' },
      })),
    );
    const snap = Object.freeze({
      name: 'node1',
      scope: 't',
      at: 0,
      gathered: null,
      decision: null,
      memory: newMemory(),
      memberState: 'running',
      role: 'primary',
    }) as AgentSnapshot;
    const agent: AgentPort = {
      snapshot: () => snap,
      request: async () => '',
      noteFailsafePing: () => {},
      readCluster: () => Promise.reject(new Error('no DCS')),
      poke: () => {},
      recentEvents: (since) => rec.since(since),
    };
    const store = new MemoryStore({ now: () => NOW });
    const api = new ApiServer({ agent, store, keys: clusterKeys('t'), cfg, now: () => NOW }, silentLogger);
    await api.listen();
    try {
      const get = async (q: string) => {
        const res = await fetch(`http://127.0.0.1:${port}/events${q}`);
        return { code: res.status, body: (await res.json()) as Array<Record<string, unknown>> };
      };
      const all = await get('');
      assert.equal(all.code, 200);
      assert.deepEqual(
        all.body.map((e) => e['reason']),
        ['-3600', '-600', '-30'],
      );
      assert.deepEqual(Object.keys(all.body[0] ?? {}), [
        'time',
        'at',
        'member',
        'timeline',
        'kind',
        'reason',
        'details',
      ]);
      assert.equal(all.body[0]?.['time'], '2026-12-03T08:00:00.000Z');
      assert.deepEqual(
        (await get('?since=15m')).body.map((e) => e['reason']),
        ['-600', '-30'],
      );
      assert.deepEqual(
        (await get(`?since=${NOW - 60_000}`)).body.map((e) => e['reason']),
        ['-30'],
      );
      assert.deepEqual(
        (await get('?since=2026-12-03T08:00:00Z')).body.map((e) => e['reason']),
        ['-3600', '-600', '-30'],
      );
      const bad = await get('?since=yesterday');
      assert.equal(bad.code, 400);
      assert.equal((bad.body as unknown as { code: string }).code, 'EVENTS_BAD_SINCE');
    } finally {
      await api.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
