/**
 * PostgreSQL with TLS end to end (`pgkeel up --tls`, real etcd and PostgreSQL 15): the replicas stream over TLS with
 * sslmode=verify-full, plain TCP is refused by the hostssl lines, the keys PostgreSQL reads are postgres-owned 0600
 * copies, a switchover and the pg_rewind of a crashed leader work over TLS, and a leader whose certificate names another
 * host is refused by its replicas — with the reason in the replica's log and the agent's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { makeCert } from '../../src/lib/certs.js';
import { postgresIdentity } from '../../src/lib/proc.js';
import { cli, healthyStatus, leaderOf, newLeaderStatus, startCluster } from '../helpers/cluster.js';

describe('pgkeel up --tls: PostgreSQL', () => {
  it('replicates over verify-full TLS, refuses plain TCP, switches over and rewinds a crashed leader over TLS, and refuses a certificate for the wrong host', async () => {
    await using c = await startCluster({ name: 'pgtls' });
    const up = await c.up(['--tls']);
    assert.equal(up.code, 0, `up --tls failed:\n${up.stdout}\n${up.stderr}`);
    assert.match(up.stdout, /TLS: CA and certificates in /);
    assert.equal(
      (JSON.parse(readFileSync(join(c.dir, 'cluster.json'), 'utf8')) as { tls?: boolean }).tls,
      true,
      'cluster.json records TLS',
    );

    const ca = join(c.dir, 'tls', 'ca.crt');
    const password = (
      JSON.parse(readFileSync(join(c.dir, 'cluster.json'), 'utf8')) as { superuser: { password: string } }
    ).superuser.password;
    /** A superuser query over TLS checking the server's certificate chain and host name (127.0.0.1, an IP SAN). */
    const tlsQuery = async (port: number, sql: string, user = 'postgres', pw = password) => {
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user,
        password: pw,
        database: 'postgres',
        connectionTimeoutMillis: 5000,
        ssl: { ca: readFileSync(ca, 'utf8') },
      });
      client.on('error', () => {});
      try {
        await client.connect();
        return (await client.query(sql)).rows as Record<string, unknown>[];
      } finally {
        await client.end().catch(() => {});
      }
    };
    const streamingOverTls = async (leaderPort: number) => {
      const rows = await tlsQuery(
        leaderPort,
        `SELECT r.application_name AS name, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.state = 'streaming' ORDER BY 1`,
      );
      return rows.length === 2 && rows.every((r) => r['ssl'] === true) ? rows : undefined;
    };

    const s = await healthyStatus(c, 3);
    const leader = leaderOf(s);
    assert.ok(leader);
    const replicas = s.members.filter((m) => m !== leader);
    // Every walsender on the leader serves a TLS connection.
    const ws = await c.waitFor('two walsenders over TLS', () => streamingOverTls(leader.port), 30_000);
    assert.deepEqual(
      ws.map((r) => r['name']),
      replicas.map((r) => r.name),
    );
    for (const r of replicas) {
      const [row] = await tlsQuery(r.port, 'SHOW primary_conninfo');
      const ci = String(row?.['primary_conninfo']);
      assert.match(ci, /sslmode=verify-full/, ci);
      assert.match(ci, new RegExp(`sslrootcert=${join(c.dir, r.name, 'data-ssl', 'replication.sslrootcert')}`), ci);
      assert.match(ci, /host=127\.0\.0\.1 /, 'the host verify-full checks is the IP SAN of the certificates');
    }

    // The proxy (a plain client on its side here) reaches PostgreSQL over TLS, checking the certificate (verify-full).
    const viaProxy = await c.waitFor(
      'a query through the proxy',
      async () => (await c.query(c.portBase + 2, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'))[0],
      30_000,
    );
    assert.deepEqual(viaProxy, { ssl: true });

    // PostgreSQL reads postgres-owned 0600 copies; the originals under DIR/tls stay root's.
    const id = postgresIdentity();
    for (const f of ['ssl_key_file', 'ssl_cert_file', 'replication.sslkey', 'superuser.sslkey']) {
      const st = statSync(join(c.dir, 'node1', 'data-ssl', f));
      assert.equal(st.mode & 0o777, 0o600, f);
      if (id) assert.equal(st.uid, id.uid, `${f} is postgres'`);
    }
    assert.equal(statSync(join(c.dir, 'tls', 'node1.key')).mode & 0o777, 0o600);
    if (id) assert.equal(statSync(join(c.dir, 'tls', 'node1.key')).uid, process.getuid?.());
    const [conf] = await tlsQuery(
      leader.port,
      `SELECT current_setting('ssl') AS ssl, current_setting('ssl_key_file') AS key`,
    );
    assert.deepEqual(conf, { ssl: 'on', key: join(c.dir, leader.name, 'data-ssl', 'ssl_key_file') });

    // Plain TCP is refused by the hostssl lines — the superuser on loopback and the replication role alike.
    await assert.rejects(
      c.query(leader.port, 'SELECT 1'),
      /no pg_hba\.conf entry for host "127\.0\.0\.1", user "postgres", database "postgres", no encryption/,
    );
    const repPw = (
      JSON.parse(readFileSync(join(c.dir, 'cluster.json'), 'utf8')) as { replication: { password: string } }
    ).replication.password;
    const psql = (conninfo: string, pw: string) =>
      new Promise<{ code: number; stderr: string }>((res) => {
        execFile(
          '/usr/lib/postgresql/15/bin/psql',
          [conninfo, '-XAtc', 'IDENTIFY_SYSTEM'],
          { env: { ...process.env, PGPASSWORD: pw }, timeout: 20_000 },
          (err, _out, stderr) => res({ code: err ? 1 : 0, stderr: String(stderr) }),
        );
      });
    const repConn = `host=127.0.0.1 port=${leader.port} user=replicator dbname=replication replication=true`;
    const plainRep = await psql(`${repConn} sslmode=disable`, repPw);
    assert.equal(plainRep.code, 1);
    assert.match(
      plainRep.stderr,
      /no pg_hba\.conf entry for replication connection from host "127\.0\.0\.1", user "replicator", no encryption/,
    );
    const tlsRep = await psql(`${repConn} sslmode=verify-full sslrootcert=${ca}`, repPw);
    assert.equal(tlsRep.code, 0, `the same connection over verify-full TLS is accepted: ${tlsRep.stderr}`);

    // A switchover under TLS: the candidate promotes, the old leader follows it over verify-full TLS.
    await tlsQuery(leader.port, 'CREATE TABLE tls_keel (id int PRIMARY KEY)');
    await tlsQuery(leader.port, 'INSERT INTO tls_keel VALUES (1)');
    const candidate = replicas[0]?.name as string;
    const sw = await cli(['ctl', 'switchover', '--candidate', candidate, '--force', '--dir', c.dir], 120_000);
    assert.equal(sw.code, 0, `switchover failed:\n${sw.stdout}\n${sw.stderr}`);
    const s2 = await newLeaderStatus(c, leader.name, 60_000);
    const next = leaderOf(s2);
    assert.equal(next?.name, candidate);
    await healthyStatus(c, 3, 90_000);
    await c.waitFor('two walsenders over TLS on the new leader', () => streamingOverTls(next?.port as number), 60_000);
    await tlsQuery(next?.port as number, 'INSERT INTO tls_keel VALUES (2)');
    await c.waitFor(
      'row 2 on the old leader',
      async () => (await tlsQuery(leader.port, 'SELECT 1 FROM tls_keel WHERE id = 2')).length > 0,
      20_000,
    );

    // The leader crashes (agent and postmaster killed); once another member leads, the crashed one is rewound from it
    // with pg_rewind over verify-full TLS, and streams again.
    const crashed = next?.name as string;
    for (const f of [join(c.dir, crashed, 'agent.pid'), join(c.dir, crashed, 'data', 'postmaster.pid')])
      process.kill(Number(readFileSync(f, 'utf8').split('\n')[0]), 'SIGKILL');
    const s3 = await newLeaderStatus(c, crashed, 60_000);
    const lead = leaderOf(s3)?.name as string;
    const again = await c.up();
    assert.equal(again.code, 0, `up after the crash failed:\n${again.stdout}\n${again.stderr}`);
    const s4 = await healthyStatus(c, 3, 90_000);
    assert.equal(leaderOf(s4)?.name, lead);
    const crashedLog = readFileSync(join(c.dir, crashed, 'agent.log'), 'utf8');
    assert.match(crashedLog, new RegExp(`running pg_rewind from ${lead}`), 'the crashed leader was rewound');
    assert.doesNotMatch(crashedLog, /PG_REWIND_FAILED|pg_rewind from .* failed/);
    await c.waitFor(
      'two walsenders over TLS after the rewind',
      () => streamingOverTls(leaderOf(s4)?.port as number),
      60_000,
    );

    // The leader gets a certificate for another host (signed by the same CA) and restarts with it.
    const wrong = await makeCert(join(c.dir, 'wrong'), { cert: ca, key: join(c.dir, 'tls', 'ca.key') }, 'wrong', {
      hosts: ['wrong.example'],
    });
    copyFileSync(wrong.cert, join(c.dir, 'tls', `${lead}.crt`));
    copyFileSync(wrong.key, join(c.dir, 'tls', `${lead}.key`));
    const rs = await cli(['ctl', 'restart', lead, '--force', '--dir', c.dir], 120_000);
    assert.equal(rs.code, 0, `restart failed:\n${rs.stdout}\n${rs.stderr}`);
    // Its replicas reconnect, check the certificate against 127.0.0.1 and refuse it.
    const victim = s4.members.find((m) => m.name !== lead) as { name: string };
    const pgLog = join(c.dir, victim.name, 'postgresql.log');
    await c.waitFor(
      `${victim.name} refusing the leader's certificate`,
      async () =>
        /server certificate for "wrong\.example" (\(and \d+ other names?\) )?does not match host name "127\.0\.0\.1"/.test(
          readFileSync(pgLog, 'utf8'),
        ),
      60_000,
    );
    // Its agent says why it is not streaming (in its log and its state's summary).
    await c.waitFor(
      `${victim.name}'s agent reporting the refused certificate`,
      async () =>
        /not streaming: cannot connect \(could not connect to the primary server: .*server certificate for \\"wrong\.example\\"/.test(
          readFileSync(join(c.dir, victim.name, 'agent.log'), 'utf8'),
        ),
      30_000,
    );
    // A re-clone from that leader fails too, and says why in the agent's log.
    const agentLog = join(c.dir, victim.name, 'agent.log');
    const before = readFileSync(agentLog, 'utf8').length;
    await cli(['ctl', 'reinit', victim.name, '--force', '--dir', c.dir], 120_000);
    await c.waitFor(
      `${victim.name}'s agent reporting the failed clone`,
      async () => {
        const text = readFileSync(agentLog, 'utf8').slice(before);
        return (
          /pg_basebackup from 127\.0\.0\.1:\d+ failed/.test(text) &&
          /does not match host name \\?"127\.0\.0\.1\\?"/.test(text)
        );
      },
      90_000,
    );
    assert.ok(existsSync(join(c.dir, 'tls', 'ca.key')));
  });
});
