import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { livenessUrl, waitLive, type ReadyDeps } from './ready.js';

function fakeDeps(answers: Array<number | Error>): ReadyDeps & { calls: number; clock: number } {
  const d = {
    calls: 0,
    clock: 0,
    now: () => d.clock,
    sleep: async (ms: number) => {
      d.clock += ms;
    },
    get: async () => {
      const a = answers[Math.min(d.calls++, answers.length - 1)];
      if (a instanceof Error) throw a;
      return a as number;
    },
  };
  return d;
}

describe('pgkeel ready', () => {
  it('asks /liveness at the connect address, https when the REST API serves TLS', () => {
    const r = { listen: '0.0.0.0:8008', connect_address: '10.0.0.21:8008', verify_client: 'none' as const };
    assert.equal(livenessUrl({ restapi: r }).href, 'http://10.0.0.21:8008/liveness');
    assert.equal(livenessUrl({ restapi: { ...r, certfile: '/c' } }).href, 'https://10.0.0.21:8008/liveness');
  });

  it('waits through refused connections and 503 until 200', async () => {
    const d = fakeDeps([new Error('connect ECONNREFUSED'), 503, 200]);
    assert.deepEqual(await waitLive(new URL('http://h:1/liveness'), 10_000, d), { ok: true, last: '200' });
    assert.equal(d.calls, 3);
  });

  it('gives up at the deadline with the last answer', async () => {
    const d = fakeDeps([503]);
    assert.deepEqual(await waitLive(new URL('http://h:1/liveness'), 2_000, d, 500), { ok: false, last: 'HTTP 503' });
    assert.equal(d.calls, 5);
  });
});
