/**
 * GET /metrics in Prometheus text format with Patroni's metric names (so existing dashboards and alerts work),
 * labelled by scope and name.
 */
import type { AgentSnapshot } from '../ha/agent.js';
import { PGKEEL_VERSION } from '../ha/agent.js';
import type { BackupServiceStatus } from '../backup/agent-service.js';
import { backupMetrics } from '../backup/metrics.js';

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function renderMetrics(s: AgentSnapshot, backup?: BackupServiceStatus, now = Date.now()): string {
  const labels = `scope="${esc(s.scope)}",name="${esc(s.name)}"`;
  const out: string[] = [];
  const gauge = (name: string, help: string, value: number, extra = '') => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name}{${labels}${extra}} ${value}`);
  };
  const st = s.gathered?.pgStatus ?? null;
  const cluster = s.gathered?.cluster;
  const leader = s.gathered?.observed.holdsLock === true;
  gauge(
    'patroni_version',
    'Version of the agent (pgkeel), as major*10000+minor*100+patch.',
    PGKEEL_VERSION.split('.').reduce((a, p) => a * 100 + Number(p), 0),
    `,version="${PGKEEL_VERSION}"`,
  );
  gauge(
    'patroni_postgres_running',
    'Value is 1 if PostgreSQL is running, 0 otherwise.',
    s.gathered?.observed.pg.running ? 1 : 0,
  );
  gauge(
    'patroni_postmaster_start_time',
    'Epoch seconds since PostgreSQL started.',
    st?.postmasterStart ? Date.parse(st.postmasterStart) / 1000 : 0,
  );
  gauge(
    'patroni_primary',
    'Value is 1 if this node is the leader, 0 otherwise.',
    leader && st?.inRecovery === false ? 1 : 0,
  );
  gauge(
    'patroni_master',
    'Value is 1 if this node is the leader, 0 otherwise (legacy name).',
    leader && st?.inRecovery === false ? 1 : 0,
  );
  gauge('patroni_replica', 'Value is 1 if this node is a replica, 0 otherwise.', st?.inRecovery ? 1 : 0);
  gauge(
    'patroni_sync_standby',
    'Value is 1 if this node is a synchronous standby, 0 otherwise.',
    cluster?.sync?.standbys.includes(s.name) ? 1 : 0,
  );
  gauge(
    'patroni_xlog_location',
    'Current WAL location (bytes) on the primary.',
    st && !st.inRecovery ? (st.walPosition ?? 0) : 0,
  );
  gauge('patroni_xlog_received_location', 'Last WAL location (bytes) received on a replica.', st?.receivedLsn ?? 0);
  gauge('patroni_xlog_replayed_location', 'Last WAL location (bytes) replayed on a replica.', st?.replayedLsn ?? 0);
  gauge(
    'patroni_xlog_replayed_timestamp',
    'Epoch seconds of the last replayed transaction.',
    st?.replayTimestamp ? Date.parse(st.replayTimestamp) / 1000 : 0,
  );
  gauge('patroni_xlog_paused', 'Value is 1 if WAL replay is paused, 0 otherwise.', st?.replayPaused ? 1 : 0);
  gauge('patroni_postgres_timeline', 'PostgreSQL timeline.', st?.timeline ?? 0);
  gauge(
    'patroni_postgres_streaming',
    'Value is 1 if the replica streams from its upstream, 0 otherwise.',
    st?.streaming ? 1 : 0,
  );
  gauge(
    'patroni_postgres_in_archive_recovery',
    'Value is 1 if the replica replays from the archive only, 0 otherwise.',
    st?.inRecovery && !st.streaming ? 1 : 0,
  );
  gauge(
    'patroni_pending_restart',
    'Value is 1 if PostgreSQL needs a restart for a changed setting, 0 otherwise.',
    st?.pendingRestart ? 1 : 0,
  );
  gauge(
    'patroni_is_paused',
    'Value is 1 if the cluster is in maintenance mode, 0 otherwise.',
    s.gathered?.dynamic.pause ? 1 : 0,
  );
  gauge(
    'patroni_cluster_unlocked',
    'Value is 1 if the leader key is free, 0 otherwise.',
    cluster && !cluster.leader ? 1 : 0,
  );
  gauge('patroni_failsafe_mode_is_active', 'Value is 1 if failsafe mode keeps the primary running without the DCS.', 0);
  gauge(
    'patroni_dcs_last_seen',
    'Epoch seconds when the DCS last answered.',
    s.memory.dcsLastSeen ? Math.floor(s.memory.dcsLastSeen / 1000) : 0,
  );
  const lag = st?.inRecovery ? Math.max(0, (cluster?.status?.optime ?? 0) - (st.replayedLsn ?? 0)) : 0;
  gauge('pgkeel_replication_lag_bytes', "Bytes this replica trails the leader's last reported position.", lag);
  gauge(
    'pgkeel_postgres_crash_restarts',
    'PostgreSQL stops in a row, each within a minute of being started (a crash loop backs off from 2).',
    s.memory.crashes,
  );
  gauge(
    'pgkeel_postgres_streaming_problem',
    'Value is 1 if this replica does not stream and its log says why (see /patroni), 0 otherwise.',
    s.gathered?.observed.pg.streamProblem ? 1 : 0,
  );
  if (backup?.repo) out.push(...backupMetrics(backup, labels, now));
  return out.join('\n') + '\n';
}
