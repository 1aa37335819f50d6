/**
 * Privilege separation on a real `pgkeel up` cluster (as root, PostgreSQL as `postgres`), each attack reproduced
 * and then refused: `postgres` rewriting node.yml or agent.pid, a swapped pid file making `down` kill a root
 * process, callbacks running as root, repeated reinitializes filling the disk, an agent started from a
 * world-writable config, and a data_dir whose pre-existing parent pgkeel would have handed to `postgres`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { configFromObject } from '../../src/config/load.js';
import { silentLogger } from '../../src/lib/log.js';
import { pidAlive, postgresIdentity, sleep } from '../../src/lib/proc.js';
import { createLocalCluster } from '../../src/local/layout.js';
import { PostgresInstance } from '../../src/postgres/instance.js';
import { cli, freePortBase, isHealthy, pgkeelBin, startCluster, type TestCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a shell command as the `postgres` OS user, as an attacker holding that account would. */
function asPostgres(script: string): Promise<{ code: number; stderr: string }> {
  return new Promise((res) => {
    execFile('runuser', ['-u', 'postgres', '--', 'sh', '-c', script], { timeout: 20_000 }, (err, _out, stderr) => {
      res({
        code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0,
        stderr,
      });
    });
  });
}

const mode = (p: string) => statSync(p).mode & 0o7777;

/** Waits until `node` has been re-cloned (a new newest before-reclone copy) and streams again. */
async function reinitOnce(c: TestCluster, node: string): Promise<void> {
  const nodeDir = join(c.dir, node);
  const newest = () =>
    readdirSync(nodeDir)
      .filter((n) => n.startsWith('data.before-reclone-'))
      .sort()
      .pop();
  const before = newest();
  const r = await cli(['ctl', '--dir', c.dir, 'reinit', node, '--force'], 90_000);
  assert.equal(r.code, 0, `reinit: ${r.stdout}${r.stderr}`);
  await c.waitFor(
    `${node} re-cloned and streaming`,
    async () => {
      if (newest() === before) return false;
      const s = await c.status();
      return s.members.find((m) => m.name === node)?.state === 'streaming';
    },
    120_000,
  );
}

describe('privilege separation between the root-run agent and postgres', { skip: !asRoot && 'needs root' }, () => {
  it("a local cluster: node folders are root's, an older postgres-owned layout is repaired, callbacks run as postgres, reinitialize keeps one copy, a foreign pid file is never signalled", async () => {
    await using c = await startCluster({ nodes: 2, name: 'privsep' });
    const up = await c.up();
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    const pgId = postgresIdentity() as { uid: number };

    // 1. Ownership: the node folder and the files the agent trusts are root's; PostgreSQL keeps its own.
    for (const n of ['node1', 'node2']) {
      const d = join(c.dir, n);
      assert.deepEqual([statSync(d).uid, mode(d)], [0, 0o755], `${d}`);
      assert.deepEqual([statSync(join(d, 'node.yml')).uid, mode(join(d, 'node.yml'))], [0, 0o600]);
      assert.equal(statSync(join(d, 'agent.pid')).uid, 0);
      for (const own of ['data', 'run', 'postgresql.log', 'pgpass'])
        assert.equal(statSync(join(d, own)).uid, pgId.uid, `${own} is postgres'`);
    }
    const append = await asPostgres(`echo x >> ${c.dir}/node1/node.yml`);
    assert.notEqual(append.code, 0);
    assert.match(append.stderr, /Permission denied/);
    const replaceYml = await asPostgres(
      `echo 'scope: evil' > ${c.dir}/node1/node.yml.new && mv -f ${c.dir}/node1/node.yml.new ${c.dir}/node1/node.yml`,
    );
    assert.notEqual(replaceYml.code, 0);
    assert.match(replaceYml.stderr, /Permission denied/);
    const replacePid = await asPostgres(`echo 1 > ${c.dir}/node1/agent.pid`);
    assert.match(replacePid.stderr, /Permission denied/);
    const swapPid = await asPostgres(`rm -f ${c.dir}/node1/agent.pid`);
    assert.match(swapPid.stderr, /Permission denied/);

    // 2. The attack on an older layout (node folder handed to postgres, as pgkeel did before): postgres replaces
    //    node.yml with one whose callback reports who runs it. `up` takes the folder back, and the callback runs as
    //    postgres, not root.
    await using out = await tempDir('privsep-cb');
    chmodSync(out.path, 0o777);
    const whoFile = join(out.path, 'who');
    const n2 = join(c.dir, 'node2');
    const yml = join(n2, 'node.yml');
    const cfg = parse(readFileSync(yml, 'utf8')) as { postgresql: Record<string, unknown> };
    const script = join(out.path, 'cb.sh');
    writeFileSync(script, `#!/bin/sh\necho "$(id -un) $*" >> ${whoFile}\n`, { mode: 0o755 });
    cfg.postgresql['callbacks'] = { on_start: script };
    const evil = join(out.path, 'node.yml');
    writeFileSync(evil, stringify(cfg), { mode: 0o644 });
    chownSync(n2, pgId.uid, 0);
    chownSync(yml, pgId.uid, 0);
    const rewrite = await asPostgres(`cp ${evil} ${n2}/node.yml.new && mv -f ${n2}/node.yml.new ${yml}`);
    assert.equal(rewrite.code, 0, `with the old layout postgres can replace node.yml: ${rewrite.stderr}`);
    const agent2 = Number(readFileSync(join(n2, 'agent.pid'), 'utf8').split('\n')[0]);
    process.kill(agent2, 'SIGTERM');
    await c.waitFor("node2's agent to stop", async () => !pidAlive(agent2), 90_000);
    const up2 = await c.up();
    assert.equal(up2.code, 0, `up after the old layout:\n${up2.stdout}\n${up2.stderr}`);
    assert.match(up2.stdout, /node2: took the node folder back from uid \d+/);
    assert.deepEqual([statSync(n2).uid, mode(n2)], [0, 0o755]);
    assert.deepEqual([statSync(yml).uid, mode(yml)], [0, 0o600]);
    await c.waitFor(
      'the on_start callback',
      async () => existsSync(whoFile) && readFileSync(whoFile, 'utf8').includes('\n'),
      30_000,
    );
    assert.equal(
      readFileSync(whoFile, 'utf8').split('\n')[0],
      'postgres on_start replica pgkeel',
      "the callback ran as postgres, not root, with Patroni's arguments",
    );

    // 3. Three reinitializes of the replica leave one moved-aside copy (postgresql.keep_moved_aside: 1).
    for (let i = 0; i < 3; i++) await reinitOnce(c, 'node2');
    const copies = readdirSync(n2).filter((n) => n.startsWith('data.before-reclone-'));
    assert.equal(copies.length, 1, `copies: ${copies.join(', ')}`);
    await c.waitFor('a healthy cluster after the reinitializes', async () => isHealthy(await c.status(), 2), 60_000);

    // 4. A pid file naming an unrelated root process: down does not signal it, says so, and does not claim the
    //    node stopped while its agent still runs.
    const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
    const pidFile = join(n2, 'agent.pid');
    const saved = readFileSync(pidFile, 'utf8');
    try {
      writeFileSync(pidFile, `${sleeper.pid}\n`);
      const down = await c.down();
      assert.equal(down.code, 1, `down must not report success:\n${down.stdout}\n${down.stderr}`);
      assert.match(
        down.stdout,
        new RegExp(
          `agent\\.pid names process ${sleeper.pid}, which is not node2's agent \\(it runs: sleep 300\\); not signalled`,
        ),
      );
      assert.match(down.stderr, /not stopped — still running: node2 \(an agent answers on/);
      assert.doesNotMatch(down.stdout, /^stopped$/m);
      assert.ok(pidAlive(sleeper.pid as number), 'the unrelated process was not killed');
    } finally {
      sleeper.kill('SIGKILL');
      writeFileSync(pidFile, saved);
    }
    const down2 = await c.down();
    assert.equal(down2.code, 0, `${down2.stdout}\n${down2.stderr}`);
  });

  it('the agent refuses, as root, a config that group or others could rewrite (CONFIG_INSECURE)', async () => {
    await using dir = await tempDir('privsep-cfg');
    const file = join(dir.path, 'node.yml');
    writeFileSync(
      file,
      [
        'scope: demo',
        'name: n1',
        'etcd3: {hosts: "127.0.0.1:2"}',
        'restapi: {listen: "127.0.0.1:3"}',
        'postgresql:',
        '  listen: 127.0.0.1:4',
        '  data_dir: data',
        '  authentication:',
        '    superuser: {password: x}',
        '    replication: {password: y}',
        '',
      ].join('\n'),
    );
    chmodSync(file, 0o664);
    const r = await cli(['agent', '-c', file], 20_000);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`refusing to run as root with ${file}: ${file} is writable by its group \\(mode 0664\\)`),
    );
    assert.match(r.stderr, /chmod go-w/);
    chmodSync(file, 0o600);
    chmodSync(dir.path, 0o777);
    const r2 = await cli(['agent', '-c', file], 20_000);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, new RegExp(`directory ${dir.path} is writable by everyone \\(mode 0777\\)`));
    assert.ok(!existsSync(join(dir.path, 'data')), 'nothing was started');
  });

  it('an agent started alone from a node folder an older pgkeel handed to postgres takes it back before reading node.yml', async () => {
    await using dir = await tempDir('privsep-agent');
    const lc = createLocalCluster(join(dir.path, 'c'), { nodes: 1, portBase: await freePortBase() });
    const pgId = postgresIdentity() as { uid: number };
    const n1 = join(lc.dir, 'node1');
    const yml = join(n1, 'node.yml');
    chownSync(n1, pgId.uid, 0);
    chownSync(yml, pgId.uid, 0);
    chmodSync(yml, 0o644);
    const agent = spawn(process.execPath, [pgkeelBin, 'agent', '-c', yml], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    agent.stdout.on('data', (d: Buffer) => (out += d.toString()));
    agent.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      for (let i = 0; i < 100 && !out.includes('repaired a node folder'); i++) await sleep(100);
      assert.match(
        out,
        /repaired a node folder made by an older pgkeel: node1: took the node folder back from uid \d+/,
      );
      assert.deepEqual([statSync(n1).uid, mode(n1)], [0, 0o755]);
      assert.deepEqual([statSync(yml).uid, mode(yml)], [0, 0o600]);
      assert.doesNotMatch(out, /CONFIG_INSECURE|refusing to run as root/);
    } finally {
      agent.kill('SIGKILL');
    }
  });

  it("a data_dir under a pre-existing root-owned directory: the directory stays root's; an existing root-owned data_dir is refused, not chowned", async () => {
    await using dir = await tempDir('privsep-data');
    const parent = join(dir.path, 'srv');
    mkdirSync(parent, { mode: 0o755 });
    const pgId = postgresIdentity() as { uid: number };
    const cfgFor = (dataDir: string) =>
      configFromObject(
        {
          scope: 's',
          name: 'n1',
          postgresql: {
            listen: '127.0.0.1:5',
            data_dir: dataDir,
            authentication: { superuser: { password: 'x' }, replication: { password: 'y' } },
          },
        },
        'test',
        {},
        dir.path,
      );
    const inst = new PostgresInstance(cfgFor(join(parent, 'data')), silentLogger);
    await inst.initdb();
    assert.equal(statSync(parent).uid, 0, 'the pre-existing parent was not handed to postgres');
    assert.equal(mode(parent), 0o755);
    assert.equal(statSync(join(parent, 'data')).uid, pgId.uid);
    assert.equal(inst.dataDirState(), 'ready');

    const found = join(dir.path, 'found');
    mkdirSync(found, { mode: 0o700 });
    await assert.rejects(
      new PostgresInstance(cfgFor(found), silentLogger).initdb(),
      (e: Error & { code?: string }) =>
        e.code === 'FS_NOT_USABLE_BY_POSTGRES' &&
        e.message.includes(`data directory ${found} exists and is owned by uid 0`),
    );
    assert.equal(statSync(found).uid, 0);
    assert.equal(statSync(dir.path).uid, 0);
  });
});
