import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHelp, escapeLabelValue, formatLabels, formatValue, renderFamilies } from './exposition.js';

test('label values escape backslash, double quote and line feed; HELP escapes backslash and line feed only', () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeHelp('say "x"\\y\nz'), 'say "x"\\\\y\\nz');
});

test('values print as the Go exporter prints them: NaN for NULL, +Inf/-Inf', () => {
  assert.equal(formatValue(null), 'NaN');
  assert.equal(formatValue(Number.NaN), 'NaN');
  assert.equal(formatValue(Infinity), '+Inf');
  assert.equal(formatValue(-Infinity), '-Inf');
  assert.equal(formatValue(-1), '-1');
  assert.equal(formatValue(0.25), '0.25');
});

test('constant labels come first; no braces without labels', () => {
  assert.equal(formatLabels({}), '');
  assert.equal(formatLabels({ datname: 'x' }, { scope: 's', name: 'n' }), '{scope="s",name="n",datname="x"}');
});

test('a family renders HELP and TYPE once, then one line per sample', () => {
  const text = renderFamilies(
    [
      {
        name: 'pg_locks_count',
        help: 'Number of locks',
        type: 'gauge',
        samples: [
          { labels: { datname: 'a"b', mode: 'sharelock' }, value: 2 },
          { labels: { datname: 'c', mode: 'sharelock' }, value: null },
        ],
      },
      { name: 'pg_up', help: 'up', type: 'gauge', samples: [{ labels: {}, value: 1 }] },
    ],
    { scope: 'demo' },
  );
  assert.equal(
    text,
    [
      '# HELP pg_locks_count Number of locks',
      '# TYPE pg_locks_count gauge',
      'pg_locks_count{scope="demo",datname="a\\"b",mode="sharelock"} 2',
      'pg_locks_count{scope="demo",datname="c",mode="sharelock"} NaN',
      '# HELP pg_up up',
      '# TYPE pg_up gauge',
      'pg_up{scope="demo"} 1',
      '',
    ].join('\n'),
  );
  assert.equal(renderFamilies([]), '');
});
