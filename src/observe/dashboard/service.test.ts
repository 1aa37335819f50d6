/** The dashboard on a real ApiServer (api-fixture.ts): files with their types and CSP, the state, the stream. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { fixture } from '../../api/api-fixture.js';
import { clusterKeys } from '../../dcs/layout.js';
import { CSP } from './assets.js';

const keys = clusterKeys('t');

type Streamed = { type: string | undefined; state: Record<string, unknown> };

/** Reads GET /dashboard/events until a streamed state satisfies `until`; `onFirst` runs after the first one. */
function streamUntil(
  port: number,
  until: (s: Record<string, unknown>) => boolean,
  onFirst: () => Promise<void> = async () => {},
): Promise<Streamed & { count: number }> {
  return new Promise((resolve, reject) => {
    let count = 0;
    const req = request({ host: '127.0.0.1', port, path: '/dashboard/events' }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let m = /event: state\ndata: (.*)\n\n/.exec(buf); m; m = /event: state\ndata: (.*)\n\n/.exec(buf)) {
          buf = buf.slice(m.index + m[0].length);
          const state = JSON.parse(m[1] as string) as Record<string, unknown>;
          if (++count === 1) onFirst().catch(reject);
          if (until(state)) {
            resolve({ type: res.headers['content-type'], state, count });
            req.destroy();
            return;
          }
        }
      });
    });
    req.setTimeout(8000, () => req.destroy(new Error('no matching state event within 8 s')));
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard routes', () => {
  it('serves the page and its assets with their content types and a strict CSP (no inline script)', async () => {
    await using f = await fixture();
    for (const [path, type] of [
      ['/dashboard', 'text/html; charset=utf-8'],
      ['/dashboard/', 'text/html; charset=utf-8'],
      ['/dashboard/app.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/style.css', 'text/css; charset=utf-8'],
    ] as const) {
      const res = await fetch(`http://127.0.0.1:${f.port}${path}`);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), type, path);
      assert.equal(res.headers.get('content-security-policy'), CSP);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      const text = await res.text();
      if (type.startsWith('text/html')) {
        assert.match(text, /<script src="\/dashboard\/app\.js" defer><\/script>/);
        assert.doesNotMatch(
          text,
          /<script>|<script [^>]*>[^<]+<\/script>|\son[a-z]+=|https?:\/\//i,
          'no inline code, no CDN',
        );
      }
    }
    assert.match(CSP, /script-src 'self'/);
    assert.doesNotMatch(CSP, /unsafe-inline|unsafe-eval/);
    const miss = await f.req('GET', '/dashboard/../package.json');
    assert.notEqual(miss.code, 200);
    assert.equal((await f.req('GET', '/dashboard/index.html')).code, 404, 'only the named files are served');
  });

  it('GET /dashboard/state: the cluster as JSON, no switchover without REST authentication', async () => {
    await using f = await fixture();
    const res = await f.req('GET', '/dashboard/state');
    assert.equal(res.code, 200);
    const s = JSON.parse(res.text) as { scope: string; served_by: string; switchover: { allowed: boolean } };
    assert.equal(s.scope, 't');
    assert.equal(s.served_by, 'node1');
    assert.deepEqual(s.switchover, { allowed: false });
  });

  it('offers the switchover with REST authentication; the stream sends the state at once', async () => {
    await using f = await fixture({ auth: true });
    const { type, state } = await streamUntil(f.port, () => true);
    assert.equal(type, 'text/event-stream; charset=utf-8');
    assert.deepEqual(state['switchover'], { allowed: true });
    assert.equal(state['scope'], 't');
  });

  it('the stream sends a new state when the cluster changes in the DCS, without being asked', async () => {
    await using f = await fixture();
    const { state, count } = await streamUntil(
      f.port,
      (s) => s['leader'] === 'node9',
      async () => {
        await f.store.put(keys.leader, 'node9');
        const rec = {
          conn_url: 'postgres://127.0.0.1:1/postgres',
          api_url: 'http://127.0.0.1:1/patroni',
          state: 'running',
          role: 'master',
        };
        await f.store.put(keys.member('node9'), JSON.stringify(rec));
      },
    );
    assert.ok(count >= 2, 'the first state had no leader');
    assert.deepEqual(
      (state['members'] as { name: string; role: string; reachable: boolean }[]).map((m) => [
        m.name,
        m.role,
        m.reachable,
      ]),
      [['node9', 'leader', false]],
    );
  });
});
