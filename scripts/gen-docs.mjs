#!/usr/bin/env node
// Regenerates docs that are derived from code (docs/config.md, the settings table in docs/proxy.md). Run after `npm run build`.
import { writeFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';
const { renderConfigDoc, withProxySettings } = await import('../dist/src/config/docs.js');
writeFileSync(new URL('../docs/config.md', import.meta.url), renderConfigDoc());
const proxyDoc = new URL('../docs/proxy.md', import.meta.url);
writeFileSync(proxyDoc, withProxySettings(readFileSync(proxyDoc, 'utf8')));
const { renderErrorsDoc } = await import('../dist/src/config/errors-doc.js');
writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc());
console.log('wrote docs/config.md, docs/errors.md and the settings table of docs/proxy.md');
