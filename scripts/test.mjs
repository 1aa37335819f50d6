#!/usr/bin/env node
// Runs the compiled tests with node's test runner. `unit`: tests beside the code (dist/src/**/*.test.js);
// `integration`: dist/test/**/*.test.js (real etcd and PostgreSQL processes). No argument: both, unit first.
// A third argument filters file paths. Prints node's spec output, then one plain summary line.
import { mkdtempSync, readdirSync, readFileSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir, out = []) {
  let names = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names.sort()) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) find(p, out);
    else if (n.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const which = process.argv[2] ?? 'all';
const filter = process.argv[3];
if (!['all', 'unit', 'integration'].includes(which)) {
  console.error(`usage: test.mjs [all|unit|integration] [filter]`);
  process.exit(2);
}
let files = [];
if (which !== 'integration') files.push(...find('dist/src'));
if (which !== 'unit') files.push(...find('dist/test'));
if (filter) files = files.filter((f) => f.includes(filter));
if (files.length === 0) {
  console.error(`no test files for "${which}"${filter ? ` matching "${filter}"` : ''}`);
  process.exit(1);
}

const tapDir = mkdtempSync(join(tmpdir(), 'pgkeel-tap-'));
const tap = join(tapDir, 'out.tap');
// One file at a time: integration files start PostgreSQL clusters, and the machine has 2 cores.
const args = [
  '--enable-source-maps',
  '--test',
  '--test-concurrency=1',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=tap',
  `--test-reporter-destination=${tap}`,
  ...files,
];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
let pass = 0,
  fail = 0,
  skip = 0;
try {
  const text = readFileSync(tap, 'utf8');
  const num = (k) => Number((new RegExp(`^# ${k} (\\d+)$`, 'm').exec(text) ?? [])[1] ?? 0);
  pass = num('pass');
  fail = num('fail') + num('cancelled');
  skip = num('skipped') + num('todo');
} catch {
  /* no tap output: the runner itself failed */
}
rmSync(tapDir, { recursive: true, force: true });
console.log(`\ntests: ${pass} passed, ${fail} failed${skip ? `, ${skip} skipped` : ''}`);
process.exit(r.status === 0 && fail === 0 && pass > 0 ? 0 : 1);
