/**
 * Backup and WAL archive metrics for an agent's /metrics (Prometheus text). Neither Patroni nor pgBackRest exports
 * these; the names follow Prometheus conventions (timestamps in seconds since the epoch, _total for counters) under
 * pgkeel_backup_ and pgkeel_wal_archive_. Pure.
 */
import type { BackupServiceStatus } from './agent-service.js';
import { nextRun, parseCron, prevRun } from './cron.js';

/**
 * The length of the schedule period `now` falls in: from the run the cron names at or before now to the next one
 * (0: not scheduled). An alert compares a backup's age with it ("older than its schedule", examples/alerts.yml).
 */
export function scheduleIntervalSeconds(cron: string, now: number): number {
  if (!cron.trim()) return 0;
  const c = parseCron(cron);
  const at = new Date(now);
  const prev = prevRun(c, at);
  const next = nextRun(c, at);
  return prev && next ? (next.getTime() - prev.getTime()) / 1000 : 0;
}

const secs = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : 0);

export function backupMetrics(b: BackupServiceStatus, labels: string, now: number): string[] {
  const out: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, rows: [string, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [extra, v] of rows) out.push(`${name}{${labels}${extra}} ${v}`);
  };
  const r = b.report;
  const types = ['full', 'incr', 'diff'] as const;
  const lastOk = (t: string) => r?.backups.filter((x) => x.type === t && x.status === 'ok').at(-1);
  metric(
    'pgkeel_backup_last_success_timestamp_seconds',
    'gauge',
    'When the newest usable backup of each type finished (0: none).',
    types.map((t) => [`,type="${t}"`, secs(lastOk(t)?.stop_time)]),
  );
  metric(
    'pgkeel_backup_last_duration_seconds',
    'gauge',
    'How long the newest usable backup of each type took.',
    types.map((t) => [`,type="${t}"`, lastOk(t)?.duration_s ?? 0]),
  );
  metric(
    'pgkeel_backup_last_bytes',
    'gauge',
    'Database bytes covered by the newest usable backup of each type.',
    types.map((t) => [`,type="${t}"`, lastOk(t)?.bytes ?? 0]),
  );
  metric(
    'pgkeel_backup_last_repo_bytes',
    'gauge',
    'Bytes the newest usable backup of each type stores in the repository.',
    types.map((t) => [`,type="${t}"`, lastOk(t)?.repo_bytes ?? 0]),
  );
  metric(
    'pgkeel_backup_schedule_interval_seconds',
    'gauge',
    "Seconds between the schedule's run at or before now and its next run, per type (0: not scheduled).",
    types.map((t) => [`,type="${t}"`, b.schedule ? scheduleIntervalSeconds(b.schedule[t], now) : 0]),
  );
  metric('pgkeel_backup_usable', 'gauge', 'Usable backups in the repository.', [
    ['', r?.backups.filter((x) => x.status === 'ok').length ?? 0],
  ]);
  metric('pgkeel_backup_running', 'gauge', 'Value is 1 while this agent runs a backup.', [['', b.running ? 1 : 0]]);
  metric('pgkeel_backup_recoverable_from_timestamp_seconds', 'gauge', 'Start of the recoverable window (0: none).', [
    ['', secs(r?.recoverable_from)],
  ]);
  metric('pgkeel_backup_recoverable_to_timestamp_seconds', 'gauge', 'End of the recoverable window (0: none).', [
    ['', secs(r?.recoverable_to)],
  ]);
  metric(
    'pgkeel_backup_verify_last_timestamp_seconds',
    'gauge',
    'When the last scheduled verify --restore ended (0: none).',
    [['', b.lastVerify ? b.lastVerify.at / 1000 : 0]],
  );
  metric(
    'pgkeel_backup_verify_ok',
    'gauge',
    'Value is 1 if the last scheduled verify --restore passed (0: failed or none).',
    [['', b.lastVerify?.ok ? 1 : 0]],
  );
  metric(
    'pgkeel_backup_verify_rto_seconds',
    'gauge',
    'Restore + WAL replay time measured by the last verify --restore.',
    [['', b.lastVerify?.rtoSeconds ?? 0]],
  );
  const a = b.archiver;
  metric('pgkeel_wal_archive_backlog_files', 'gauge', 'WAL files PostgreSQL marked ready that are not archived yet.', [
    ['', a?.backlog ?? 0],
  ]);
  metric(
    'pgkeel_wal_archive_lag_seconds',
    'gauge',
    'Seconds since this member last archived a WAL file while files are waiting (0 when none waits).',
    [['', a && a.backlog > 0 && a.lastArchived ? Math.max(0, (now - a.lastArchived.time) / 1000) : 0]],
  );
  metric('pgkeel_wal_archive_last_archived_timestamp_seconds', 'gauge', 'When this member last archived a WAL file.', [
    ['', a?.lastArchived ? a.lastArchived.time / 1000 : 0],
  ]);
  metric('pgkeel_wal_archive_pushed_total', 'counter', 'WAL files this member archived.', [['', a?.pushed ?? 0]]);
  metric('pgkeel_wal_archive_failures_total', 'counter', 'Failed attempts to archive a WAL file.', [
    ['', a?.failures ?? 0],
  ]);
  return out;
}
