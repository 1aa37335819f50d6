import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configProblems } from './actions-config.js';

describe('configProblems: the DCS config validated like the agents read it', () => {
  it('accepts a valid config, with or without pause', () => {
    assert.deepEqual(
      configProblems({ ttl: 30, loop_wait: 10, retry_timeout: 10, postgresql: { parameters: { work_mem: '8MB' } } }),
      [],
    );
    assert.deepEqual(configProblems({ pause: true }), []);
  });

  it('lists every problem with its key path, unknown keys with a "did you mean"', () => {
    const p = configProblems({
      tll: 30,
      loop_wait: 'often',
      postgresql: { parameter: {}, use_slots: 'maybe' },
      pause: 'yes',
    });
    const byPath = Object.fromEntries(p.map((x) => [x.path, x.message]));
    assert.match(byPath['tll'] ?? '', /unknown key \(did you mean "ttl"\?\); allowed here: .*, pause$/);
    assert.match(byPath['loop_wait'] ?? '', /expected an integer \(seconds\) >= 1 <= 300, got "often"/);
    assert.match(byPath['postgresql.parameter'] ?? '', /did you mean "parameters"/);
    assert.match(byPath['postgresql.use_slots'] ?? '', /expected true or false/);
    assert.match(byPath['pause'] ?? '', /expected true or false, got "yes"/);
    assert.equal(p.length, 5);
  });

  it('suggests pause for a misspelled pause', () => {
    const [p] = configProblems({ paus: true });
    assert.equal(p?.path, 'paus');
    assert.match(p?.message ?? '', /did you mean "pause"/);
  });

  it('refuses loop_wait + 2*retry_timeout > ttl on the effective values', () => {
    const p = configProblems({ ttl: 10, loop_wait: 5, retry_timeout: 3 });
    assert.equal(p.length, 1);
    assert.equal(p[0]?.path, 'ttl');
    assert.match(p[0]?.message ?? '', /5 \+ 2\*3 = 11/);
  });
});
