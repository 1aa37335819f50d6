import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { configFromObject } from './load.js';
import { EXAMPLE, renderConfigDoc, withProxySettings } from './docs.js';
import { renderErrorsDoc } from './errors-doc.js';

it('docs/config.md is generated from the current schema (run `npm run docs` after changing it)', () => {
  const onDisk = readFileSync(new URL('../../../docs/config.md', import.meta.url), 'utf8');
  assert.equal(onDisk, renderConfigDoc());
});

it('the documented example is a valid config', () => {
  const c = configFromObject(parse(EXAMPLE), 'example', {}, '/');
  assert.equal(c.name, 'node1');
});

it('docs/proxy.md carries the current proxy settings table (run `npm run docs` after changing it)', () => {
  const onDisk = readFileSync(new URL('../../../docs/proxy.md', import.meta.url), 'utf8');
  assert.equal(onDisk, withProxySettings(onDisk));
});

it('docs/errors.md is generated from the current catalogues (run `npm run docs`)', () => {
  assert.equal(readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8'), renderErrorsDoc());
});
