import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { configFromObject } from './load.js';
import { EXAMPLE, renderConfigDoc } from './docs.js';

it('docs/config.md is generated from the current schema (run `npm run docs` after changing it)', () => {
  const onDisk = readFileSync(new URL('../../../docs/config.md', import.meta.url), 'utf8');
  assert.equal(onDisk, renderConfigDoc());
});

it('the documented example is a valid config', () => {
  const c = configFromObject(parse(EXAMPLE), 'example', {}, '/');
  assert.equal(c.name, 'node1');
});
