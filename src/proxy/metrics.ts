/**
 * Prometheus text exposition of the proxy (GET /metrics on metrics_listen): the same numbers as SHOW POOLS and
 * SHOW STATS, named like pgbouncer_exporter's metrics with a pgkeel_proxy_ prefix, plus the topology and the wait
 * histogram; GET /stats on the same listener answers the pools as JSON (stats-json.ts).
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */
import { createServer, type Server } from 'node:http';
import type { AdminData } from './admin/admin.js';
import { WAIT_BOUNDS_US } from './pool/wait-histogram.js';
import { statsJson } from './stats-json.js';

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export function renderMetrics(d: AdminData): string {
  const out: string[] = [];
  const family = (
    name: string,
    type: 'gauge' | 'counter',
    help: string,
    samples: [Record<string, string>, number][],
  ): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [l, v] of samples) out.push(`${name}${labels(l)} ${Number.isFinite(v) ? v : 0}`);
  };
  const pools = d.pools();
  const pl = (p: { database: string; user: string }): Record<string, string> => ({
    database: p.database,
    user: p.user,
  });
  family('pgkeel_proxy_up', 'gauge', '1 while the proxy serves.', [[{}, 1]]);
  family(
    'pgkeel_proxy_pool_client_active_connections',
    'gauge',
    'Clients linked to a server or idle, per pool.',
    pools.map((p) => [pl(p), p.clActive]),
  );
  family(
    'pgkeel_proxy_pool_client_waiting_connections',
    'gauge',
    'Clients waiting for a server connection.',
    pools.map((p) => [pl(p), p.clWaiting]),
  );
  family(
    'pgkeel_proxy_pool_server_active_connections',
    'gauge',
    'Server connections linked to a client.',
    pools.map((p) => [pl(p), p.svActive]),
  );
  family(
    'pgkeel_proxy_pool_server_idle_connections',
    'gauge',
    'Idle server connections.',
    pools.map((p) => [pl(p), p.svIdle]),
  );
  family(
    'pgkeel_proxy_pool_server_login_connections',
    'gauge',
    'Server connections logging in.',
    pools.map((p) => [pl(p), p.svLogin]),
  );
  family(
    'pgkeel_proxy_pool_client_maxwait_seconds',
    'gauge',
    'Longest current wait for a server connection.',
    pools.map((p) => [pl(p), p.maxWaitUs / 1e6]),
  );
  waitHistogram(out, d, pl);
  const stats = d.stats();
  const counter = (name: string, help: string, pick: (s: (typeof stats)[number]) => number): void =>
    family(
      name,
      'counter',
      help,
      stats.map((s) => [{ database: s.database }, pick(s)]),
    );
  counter(
    'pgkeel_proxy_queries_pooled_total',
    'Queries (Query and Sync messages) pooled.',
    (s) => s.totals.query_count,
  );
  counter('pgkeel_proxy_transactions_pooled_total', 'Transactions pooled.', (s) => s.totals.xact_count);
  counter('pgkeel_proxy_received_bytes_total', 'Bytes received from clients.', (s) => s.totals.received);
  counter('pgkeel_proxy_sent_bytes_total', 'Bytes sent to clients.', (s) => s.totals.sent);
  counter(
    'pgkeel_proxy_queries_duration_seconds_total',
    'Time spent by servers on queries.',
    (s) => s.totals.query_time / 1e6,
  );
  counter(
    'pgkeel_proxy_client_wait_seconds_total',
    'Time clients waited for a server.',
    (s) => s.totals.wait_time / 1e6,
  );
  counter(
    'pgkeel_proxy_server_assignments_total',
    'Server connections assigned to clients.',
    (s) => s.totals.server_assignment_count,
  );
  counter('pgkeel_proxy_client_logins_total', 'Client logins.', (s) => s.totals.client_login_count);
  const t = d.topology();
  family(
    'pgkeel_proxy_node_eligible',
    'gauge',
    '1 when the proxy routes to the node (leader for rw, replicas for ro).',
    t.rows.map((r) => [{ node: r.node, role: r.role }, r.eligible ? 1 : 0]),
  );
  family(
    'pgkeel_proxy_replica_lag_bytes',
    'gauge',
    'Replica lag behind the leader as published in the DCS.',
    t.rows
      .filter((r) => r.lagBytes !== null && r.role !== 'leader')
      .map((r) => [{ node: r.node }, r.lagBytes as number]),
  );
  family('pgkeel_proxy_paused', 'gauge', '1 while PAUSEd or waiting for a leader.', [[{}, d.state().paused ? 1 : 0]]);
  family(
    'pgkeel_proxy_list_items',
    'gauge',
    'SHOW LISTS: items per internal list.',
    d.lists().map(([name, n]) => [{ list: name }, n]),
  );
  return out.join('\n') + '\n';
}

/** pgkeel_proxy_pool_wait_seconds: cumulative `le` buckets in seconds, then _sum and _count, per pool. */
function waitHistogram(
  out: string[],
  d: AdminData,
  pl: (p: { database: string; user: string }) => Record<string, string>,
) {
  const name = 'pgkeel_proxy_pool_wait_seconds';
  out.push(
    `# HELP ${name} How long clients waited for a server connection, per assignment.`,
    `# TYPE ${name} histogram`,
  );
  for (const p of d.poolStats()) {
    const l = pl(p);
    let cum = 0;
    p.waits.counts.forEach((n, i) => {
      cum += n;
      const b = WAIT_BOUNDS_US[i];
      out.push(`${name}_bucket${labels({ ...l, le: b === undefined ? '+Inf' : String(b / 1e6) })} ${cum}`);
    });
    out.push(`${name}_sum${labels(l)} ${p.waits.sumUs / 1e6}`, `${name}_count${labels(l)} ${p.waits.count}`);
  }
}

/**
 * Serves /metrics and /stats; resolves with the bound address once listening. `wallNow` stamps /stats (tests
 * inject it).
 */
export async function startMetricsServer(
  host: string,
  port: number,
  data: () => AdminData | Promise<AdminData>,
  wallNow: () => number = Date.now,
): Promise<{ server: Server; address: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || (path !== '/metrics' && path !== '/stats')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /stats\n');
      return;
    }
    Promise.resolve(data()).then(
      (d) => {
        if (path === '/stats')
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify(statsJson(d, new Date(wallNow()))));
        else res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(renderMetrics(d));
      },
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address();
  const address =
    typeof a === 'object' && a
      ? `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`
      : `${host}:${port}`;
  return { server, address };
}
