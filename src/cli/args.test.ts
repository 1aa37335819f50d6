import { it } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, UsageError } from './args.js';

it('refuses flags named like Object.prototype members as unknown options', () => {
  const spec = { force: { type: 'boolean', doc: 'no prompt' } } as const;
  for (const f of ['--constructor', '--toString', '--__proto__', '--hasOwnProperty=1']) {
    assert.throws(
      () => parseArgs([f], spec),
      (e: unknown) => e instanceof UsageError && /unknown option/.test(e.message),
      f,
    );
  }
  assert.equal(parseArgs(['--force'], spec).flags['force'], true);
});
