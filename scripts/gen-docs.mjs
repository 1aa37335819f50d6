#!/usr/bin/env node
// Regenerates docs that are derived from code (docs/config.md). Run after `npm run build`.
import { writeFileSync } from 'node:fs';
const { renderConfigDoc } = await import('../dist/src/config/docs.js');
writeFileSync(new URL('../docs/config.md', import.meta.url), renderConfigDoc());
console.log('wrote docs/config.md');
