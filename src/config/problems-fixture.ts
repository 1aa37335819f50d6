/** For tests: the problems (`path: message`) of the ConfigError `fn` throws; fails when it throws nothing or else. */
import assert from 'node:assert/strict';
import { ConfigError } from './schema.js';

export function configProblems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('expected a ConfigError');
}
