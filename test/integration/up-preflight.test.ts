/**
 * `pgkeel up` in a directory the postgres OS user cannot enter (a `mktemp -d` is 0700 root) refuses at once, naming
 * the directory and the fix — instead of waiting out its timeout while agents fail to bootstrap over and over.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cli, freePortBase } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

describe('up pre-flight', {
  skip: process.getuid?.() === 0 ? false : 'only root runs PostgreSQL as another user',
}, () => {
  it('refuses a directory postgres cannot enter, naming it, and leaves no failed bootstrap behind', async () => {
    await using tmp = await tempDir('preflight');
    chmodSync(tmp.path, 0o700);
    const dir = join(tmp.path, 'pgkeel-data');
    const r = await cli(
      ['up', '--detach', '--dir', dir, '--port-base', String(await freePortBase()), '--nodes', '1', '--timeout', '60'],
      90_000,
    );
    try {
      assert.notEqual(r.code, 0);
      const out = r.stdout + r.stderr;
      assert.match(
        out,
        new RegExp(
          `postgresql\\.data_dir: the "postgres" OS user cannot enter ${tmp.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `,
        ),
      );
      assert.match(out, /chmod o\+x/);
      const node = join(dir, 'node1');
      assert.ok(
        !existsSync(join(node, 'data')) || readdirSync(join(node, 'data')).length === 0,
        'nothing was initialized',
      );
      assert.deepEqual(
        readdirSync(node).filter((n) => n.includes('failed-bootstrap')),
        [],
      );
    } finally {
      await cli(['down', '--dir', dir], 60_000);
    }
  });
});
