import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mergePatch } from './merge-patch.js';

describe('mergePatch (RFC 7396)', () => {
  it('merges objects recursively, replaces scalars and arrays, deletes on null', () => {
    const target = {
      ttl: 10,
      pause: true,
      postgresql: { parameters: { work_mem: '4MB', max_connections: 100 }, use_slots: true },
      tags: ['a'],
    };
    const patch = {
      ttl: 20,
      pause: null,
      postgresql: { parameters: { work_mem: '8MB', max_connections: null } },
      tags: ['b'],
    };
    assert.deepEqual(mergePatch(target, patch), {
      ttl: 20,
      postgresql: { parameters: { work_mem: '8MB' }, use_slots: true },
      tags: ['b'],
    });
  });

  it('never changes its inputs, and creates missing objects', () => {
    const target = { a: { b: 1 } };
    const patch = { a: { c: 2 }, d: { e: 3 } };
    const out = mergePatch(target, patch);
    assert.deepEqual(out, { a: { b: 1, c: 2 }, d: { e: 3 } });
    assert.deepEqual(target, { a: { b: 1 } });
    assert.deepEqual(patch, { a: { c: 2 }, d: { e: 3 } });
  });

  it('a non-object patch replaces the target', () => {
    assert.equal(mergePatch({ a: 1 }, 5), 5);
  });
});
