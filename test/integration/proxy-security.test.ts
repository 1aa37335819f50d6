/**
 * The proxy's safe defaults, against real PostgreSQL:
 * - `pgkeel proxy --listen … --primary … --auth-file userlist.txt` (no --auth) asks for a password: an
 *   unprivileged local user (`runuser -u nobody`) with psql is refused without one and with a wrong one, and the
 *   failed login is logged with the client's address — never with the password.
 * - Large messages are streamed, not held: 256 MB through the proxy (a Query, a Bind, a DataRow back) raise the
 *   proxy process's peak RSS (VmHWM) by far less than one message.
 * - A message over the limit closes only that client, with an ErrorResponse (54000); others keep working.
 * - Hostile bytes leave a line with the client's address in the log.
 * - Transaction pooling's session-state caveat (as pgBouncer): a SET ROLE outside a transaction reaches the next
 *   client, and server_reset_query_always stops it.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type pg from 'pg';
import { createLogger } from '../../src/lib/log.js';
import { buildQuery, buildStartupMessage, Framer } from '../../src/protocol/index.js';
import { loadProxyConfig } from '../../src/proxy/config.js';
import { freePortBase, pgkeelBin } from '../helpers/cluster.js';
import { connectClient, proxyFixture } from '../helpers/proxy.js';

const fx = proxyFixture('proxy-security', { postgres: { maxConnections: 30 } });
const PASSWORD = 'pw-Secret-4711';
const WRONG = 'wrong-guess-0815';
const MB = 1024 * 1024;

interface CliProxy {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  log(): string;
}
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

/** `pgkeel proxy` as its own process in front of the fixture's PostgreSQL; resolves once it listens. */
async function cliProxy(args: string[]): Promise<CliProxy> {
  const port = await freePortBase();
  const child = spawn(
    process.execPath,
    [pgkeelBin, 'proxy', '--listen', `127.0.0.1:${port}`, '--primary', `${fx.pg.host}:${fx.pg.port}`, ...args],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  children.push(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start: ${err}`)), 20_000);
    child.on('exit', (code) => reject(new Error(`proxy exited ${code}: ${err}`)));
    const poll = setInterval(() => {
      if (!err.includes('proxy listening')) return;
      clearInterval(poll);
      clearTimeout(timer);
      resolve();
    }, 50);
  });
  return { host: '127.0.0.1', port, pid: child.pid as number, log: () => err };
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (e, out, err) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err });
    });
  });
}

/** psql as the unprivileged `nobody`, password (if any) in PGPASSWORD. */
function psqlAsNobody(port: number, password?: string) {
  const env = password === undefined ? [] : [`PGPASSWORD=${password}`];
  return run('runuser', [
    '-u',
    'nobody',
    '--',
    'env',
    ...env,
    'psql',
    '-w',
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    'postgres',
    '-d',
    'postgres',
    '-Atc',
    'select 42',
  ]);
}

function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `${field} of ${pid}`);
  return Number(m[1]);
}

function capture(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger({ format: 'json', level: 'info', write: (l) => lines.push(l) }), lines };
}

describe('proxy security defaults', () => {
  it('--auth-file without --auth asks for a password: nobody gets in without the right one, and failures are logged', async () => {
    const userlist = join(fx.dir, 'userlist.txt');
    writeFileSync(userlist, `"postgres" "${PASSWORD}"\n`, { mode: 0o600 });
    const p = await cliProxy(['--auth-file', userlist]);

    const none = await psqlAsNobody(p.port);
    assert.notEqual(none.code, 0);
    assert.match(none.err, /no password supplied|password authentication failed/);
    const wrong = await psqlAsNobody(p.port, WRONG);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.err, /password authentication failed for user "postgres"/);
    await assert.rejects(connectClient(p, { password: WRONG }), (e: { code?: string }) => e.code === '28P01');
    const right = await psqlAsNobody(p.port, PASSWORD);
    assert.equal(right.out.trim(), '42', right.err);

    const failures = p
      .log()
      .split('\n')
      .filter((l) => l.includes('client login failed'));
    assert.ok(failures.length >= 2, p.log());
    for (const l of failures) {
      assert.match(l, /client=127\.0\.0\.1:\d+/);
      assert.match(l, /user=postgres/);
      assert.match(l, /code=PROXY_AUTH_FAILED/);
    }
    assert.ok(!p.log().includes(WRONG) && !p.log().includes(PASSWORD), 'no password in the log');
  });

  it('streams 256 MB messages both ways: the proxy process peak RSS grows by less than a quarter of one message', async (t) => {
    const p = await cliProxy(['--auth', 'trust']);
    assert.match(
      p.log(),
      new RegExp(`auth_type is trust.*127\\.0\\.0\\.1:${p.port}`),
      'trust warns, naming the listener',
    );
    const c = await connectClient(p);
    try {
      assert.equal((await c.query('select 1 as one')).rows[0].one, 1); // pools and buffers warmed up
      const rssBefore = procStatusKb(p.pid, 'VmRSS');
      // 256 MB, the size of the reported attack: the proxy's garbage (64 KiB socket reads until V8 collects them)
      // plateaus near 32 MB whatever the size, so growth must stay well below the message, not proportional to it.
      const size = 256 * MB;
      const big = 'x'.repeat(size);
      const steps: string[] = [];
      const step = (what: string) => steps.push(`${what}: +${procStatusKb(p.pid, 'VmHWM') - rssBefore} kB`);
      assert.equal((await c.query(`SELECT length('${big}') AS n`)).rows[0].n, size, 'simple Query');
      step('Query');
      assert.equal((await c.query('SELECT length($1::text) AS n', [big])).rows[0].n, size, 'Bind (extended protocol)');
      step('Bind');
      assert.equal(
        (await c.query(`SELECT repeat('y', ${size}) AS r`)).rows[0].r.length,
        size,
        'DataRow back to the client',
      );
      step('DataRow');
      const grownKb = procStatusKb(p.pid, 'VmHWM') - rssBefore;
      t.diagnostic(`peak RSS growth: ${steps.join(', ')}`);
      assert.ok(
        grownKb * 1024 < size / 4,
        `peak RSS grew by ${grownKb} kB for ${size / MB} MB messages (${steps.join(', ')})`,
      );
    } finally {
      await c.end();
    }
  });

  it('an over-limit message closes only that client with 54000; another client keeps working; the log names the client', async () => {
    const { log, lines } = capture();
    const at = await fx.proxy({ max_packet_size: MB, max_buffered_packet_size: 65536 }, { log });
    const other = await connectClient(at);
    try {
      for (const [what, send] of [
        ['a Query over max_packet_size', (c: pg.Client) => c.query(`SELECT '${'q'.repeat(2 * MB)}'`)],
        [
          'a named Parse (transaction mode) over max_buffered_packet_size',
          (c: pg.Client) => c.query({ name: 'n1', text: `SELECT '${'p'.repeat(100_000)}'` }),
        ],
      ] as const) {
        const victim = await connectClient(at);
        const port = (victim as unknown as { connection: { stream: { localPort: number } } }).connection.stream
          .localPort;
        const ended = new Promise<void>((resolve) => victim.once('end', () => resolve()));
        await assert.rejects(send(victim), (e: { code?: string }) => e.code === '54000', what);
        await ended;
        assert.equal((await other.query('select 2 as two')).rows[0].two, 2, `after ${what}`);
        assert.ok(
          lines.some(
            (l) =>
              l.includes('client protocol violation') &&
              l.includes(`"client":"127.0.0.1:${port}"`) &&
              l.includes('PROTOCOL_TOO_LARGE'),
          ),
          `${what}: ${lines.join('\n')}`,
        );
      }
      const ok = await connectClient(at);
      // Below the limits a long Query and a long Bind of a named statement (its head rewritten, the rest streamed) work.
      assert.equal((await ok.query(`SELECT length('${'s'.repeat(900_000)}') AS n`)).rows[0].n, 900_000);
      for (let i = 0; i < 2; i++) {
        assert.equal(
          (await ok.query({ name: 'named', text: 'SELECT length($1::text) AS n', values: ['b'.repeat(900_000)] }))
            .rows[0].n,
          900_000,
        );
      }
      await ok.end();
    } finally {
      await other.end();
    }
    assert.ok(!lines.some((l) => l.includes('qqqqqqqq') || l.includes('pppppppp')), 'no message body in the log');
  });

  it('transaction mode: SET ROLE outside a transaction reaches the next client, unless server_reset_query_always', async () => {
    await fx.pg.sql('DO $$ BEGIN CREATE ROLE leak_role; EXCEPTION WHEN duplicate_object THEN NULL; END $$');
    for (const always of [false, true]) {
      const at = await fx.proxy({ default_pool_size: 1, server_reset_query_always: always });
      const a = await connectClient(at);
      await a.query('SET ROLE leak_role');
      await a.query("SET statement_timeout = '4321'");
      const b = await connectClient(at); // the pool's only server connection, after a's transactions
      const seen = (await b.query("SELECT current_user AS u, current_setting('statement_timeout') AS t")).rows[0];
      assert.deepEqual(
        seen,
        always ? { u: 'postgres', t: '0' } : { u: 'leak_role', t: '4321ms' },
        `server_reset_query_always ${always}`,
      );
      await a.end();
      await b.end();
    }
  });

  it('a client that leaves in the middle of a streamed message does not leave the rest of it to the next client', {
    timeout: 60_000,
  }, async () => {
    const at = await fx.proxy({ default_pool_size: 1 });
    // Logged in (trust), then SELECT 1 and the start of a 1 MB CopyData: its ReadyForQuery arrives mid-message.
    const raw = connect(at);
    const framer = new Framer();
    let ready = 0;
    const twoReady = new Promise<void>((resolve) => {
      raw.on('data', (d: Buffer) => {
        framer.push(d);
        for (let f = framer.next(); f; f = framer.next()) if (f.type === 0x5a && ++ready === 2) resolve();
      });
    });
    raw.on('error', () => {});
    raw.write(buildStartupMessage({ user: 'postgres', database: 'postgres' }));
    const copyHead = Buffer.alloc(5 + 100_000, 0x41);
    copyHead[0] = 0x64;
    copyHead.writeInt32BE(1024 * 1024 + 4, 1);
    raw.write(Buffer.concat([buildQuery('SELECT 1'), copyHead]));
    await twoReady;
    // The pool's only server connection must not serve anyone else while it waits for the rest of that message.
    const b = await connectClient(at);
    const answer = b.query('select 2 as two');
    raw.destroy();
    assert.equal((await answer).rows[0].two, 2, 'the next client gets a clean server connection');
    await b.end();
  });

  it('a RELOAD that turns auth_type trust on warns like a start with it', async () => {
    const { log, lines } = capture();
    const userlist = join(fx.dir, 'reload-userlist.txt');
    writeFileSync(userlist, `"postgres" "${PASSWORD}"\n`, { mode: 0o600 });
    const file = join(fx.dir, 'reload-proxy.yml');
    const yml = (auth: string) =>
      `listen: 127.0.0.1:0\nprimary: ${fx.pg.host}:${fx.pg.port}\nauth_file: ${userlist}\nauth_type: ${auth}\n`;
    writeFileSync(file, yml('scram-sha-256'));
    const at = await fx.start(loadProxyConfig(file), { log, configFile: file });
    assert.ok(!lines.some((l) => l.includes('auth_type is trust')));
    writeFileSync(file, yml('trust'));
    at.p.reload();
    assert.ok(
      lines.some((l) => l.includes('auth_type is trust')),
      lines.join('\n'),
    );
  });

  it('logs hostile bytes with the client address, without the bytes', async () => {
    const { log, lines } = capture();
    const at = await fx.proxy({}, { log });
    const port = await new Promise<number>((resolve, reject) => {
      const s = connect(at, () => s.write('GET /secret-path HTTP/1.1\r\nHost: x\r\n\r\n'));
      let local = 0;
      s.on('connect', () => (local = s.localPort as number));
      s.on('data', () => {});
      s.on('error', reject);
      s.on('close', () => resolve(local));
    });
    const line = lines.find(
      (l) => l.includes('client protocol violation') && l.includes(`"client":"127.0.0.1:${port}"`),
    );
    assert.ok(line, lines.join('\n'));
    assert.ok(!line.includes('secret-path'));
    const c = await connectClient(at);
    assert.equal((await c.query('select 3 as three')).rows[0].three, 3);
    await c.end();
  });
});
