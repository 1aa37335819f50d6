/**
 * The npm tarball installs and runs: `npm pack` (with --ignore-scripts: dist/ is already built for the tests, and
 * the prepack build would wipe it under the running suite), `npm install -g --prefix TMP` of the tarball (its
 * dependencies come from the npm registry or the local cache; the test is skipped, saying so, when neither has
 * them), then TMP/bin/pgkeel version, help and init --help, and the dashboard's web files where the installed
 * code looks for them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

const run = (cmd: string, args: string[], cwd: string, timeout = 60_000) =>
  spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, npm_config_fund: 'false' } });

describe('npm package', () => {
  it('packs, installs globally into a prefix, and runs', { timeout: 120_000 }, async (t) => {
    await using dir = await tempDir('package');
    const pack = run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir.path], repoRoot);
    assert.equal(pack.status, 0, pack.stderr);
    const tgz = readdirSync(dir.path).find((f) => f.endsWith('.tgz'));
    assert.ok(tgz, 'a tarball');
    const list = run('tar', ['tzf', join(dir.path, tgz)], dir.path).stdout.split('\n');
    for (const f of [
      'package/bin/pgkeel',
      'package/dist/src/cli/main.js',
      'package/web/dashboard/index.html',
      'package/packaging/systemd/pgkeel-agent@.service',
      'package/docs/deploy.md',
    ])
      assert.ok(list.includes(f), `${f} is in the tarball`);
    assert.deepEqual(
      list.filter((f) => /\.test\.js$|\.map$|^package\/(test|bench|src)\//.test(f)),
      [],
      'no tests, source maps or sources',
    );

    const prefix = join(dir.path, 'prefix');
    const install = run(
      'npm',
      ['install', '-g', '--prefer-offline', '--no-audit', '--prefix', prefix, join(dir.path, tgz)],
      dir.path,
    );
    if (install.status !== 0 && /ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ENETUNREACH|network/i.test(install.stderr))
      return t.skip(
        `the npm registry is unreachable and the cache lacks the dependencies: ${install.stderr.trim().split('\n')[0]}`,
      );
    assert.equal(install.status, 0, install.stderr);

    const pgkeel = join(prefix, 'bin', 'pgkeel');
    const version = run(pgkeel, ['version'], dir.path);
    assert.equal(version.status, 0, version.stderr);
    assert.match(version.stdout, /^pgkeel \d+\.\d+\.\d+/);
    const help = run(pgkeel, ['help'], dir.path);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^ {2}init {5}print a node config/m);
    assert.match(run(pgkeel, ['init', '--help'], dir.path).stdout, /--secrets-from DIR/);

    // The installed dashboard finds its files: ASSET_DIR of the installed code holds the page.
    const installed = join(prefix, 'lib', 'node_modules', 'pgkeel');
    const assets = (await import(
      pathToFileURL(join(installed, 'dist', 'src', 'observe', 'dashboard', 'assets.js')).href
    )) as { ASSET_DIR: string };
    assert.ok(assets.ASSET_DIR.startsWith(installed), assets.ASSET_DIR);
    assert.ok(existsSync(join(assets.ASSET_DIR, 'index.html')));
  });
});
