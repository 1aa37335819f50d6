/** POST /drill over real HTTP (api-fixture.ts): refused unless allowed and authenticated; starts an isolation. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DrillHooks } from '../ha/drill.js';
import { CREDS, fixture } from './api-fixture.js';
import { drillRefusal } from './actions-drill.js';

const AUTH = `${CREDS.username}:${CREDS.password}`;

describe('POST /drill', () => {
  it('403 when restapi.allow_drills is off (the default), even with the right credentials', async () => {
    await using f = await fixture({ auth: true, drills: new DrillHooks(Date.now) });
    const r = await f.req('POST', '/drill', { fault: 'isolate', seconds: 5 }, AUTH);
    assert.equal(r.code, 403);
    assert.match(r.text, /restapi\.allow_drills: true/);
  });

  it('403 when allowed but the API has no authentication', async () => {
    const drills = new DrillHooks(Date.now);
    await using f = await fixture({ restapi: { allow_drills: true }, drills });
    const r = await f.req('POST', '/drill', { fault: 'crash', seconds: 5 });
    assert.equal(r.code, 403);
    assert.match(r.text, /restapi\.authentication/);
    assert.equal(drills.active(), null);
  });

  it('401 without credentials; 400 for a bad body; 200 starts the isolation', async () => {
    const drills = new DrillHooks(Date.now);
    await using f = await fixture({ auth: true, restapi: { allow_drills: true }, drills });
    assert.equal((await f.req('POST', '/drill', { fault: 'isolate', seconds: 5 })).code, 401);
    for (const body of [
      { fault: 'reboot', seconds: 5 },
      { fault: 'crash', seconds: 0 },
      { fault: 'crash', seconds: 601 },
      { fault: 'crash', seconds: 1.5 },
      { fault: 'crash', seconds: 5, extra: 1 },
    ]) {
      const r = await f.req('POST', '/drill', body, AUTH);
      assert.equal(r.code, 400, JSON.stringify(body));
    }
    assert.equal(drills.active(), null);
    const ok = await f.req('POST', '/drill', { fault: 'isolate', seconds: 5 }, AUTH);
    assert.equal(ok.code, 200);
    assert.match(ok.text, /isolated from the DCS for 5 s/);
    assert.equal(drills.active()?.fault, 'isolate');
    // the API itself now sees the DCS as the isolated agent does
    assert.equal((await f.req('GET', '/cluster')).code, 503);
    const again = await f.req('POST', '/drill', { fault: 'crash', seconds: 5 }, AUTH);
    assert.equal(again.code, 409);
    assert.match(again.text, /already running/);
  });

  it('an agent started without drill hooks refuses (409)', async () => {
    await using f = await fixture({ auth: true, restapi: { allow_drills: true } });
    const r = await f.req('POST', '/drill', { fault: 'isolate', seconds: 5 }, AUTH);
    assert.equal(r.code, 409);
    assert.match(r.text, /without drill hooks/);
  });

  it('drillRefusal: allow_drills first, then authentication', () => {
    const base = { listen: '127.0.0.1:8008', connect_address: '127.0.0.1:8008', verify_client: 'none' as const };
    assert.match(drillRefusal(base) ?? '', /allow_drills/);
    assert.match(drillRefusal({ ...base, allow_drills: true }) ?? '', /authentication/);
    assert.equal(drillRefusal({ ...base, allow_drills: true, authentication: { username: 'a', password: 'b' } }), null);
  });
});
