/** `pgkeel status` and `pgkeel up` as text: the members table and the connection strings to use. */
import type { StatusJson } from '../local/status.js';
import { humanAge } from '../backup/report.js';
import { renderTable } from './table.js';
import { lastFailoverText } from '../ctl/view.js';

export function formatBytes(n: number | null): string {
  if (n === null) return 'unknown';
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 ** 2).toFixed(1)} MB`;
}

export function statusTable(s: StatusJson): string {
  const rows = [
    ['Member', 'Role', 'State', 'Host:Port', 'TL', 'Lag', 'Lag (s)'],
    ...s.members.map((m) => [
      m.name,
      m.role,
      m.state,
      `${m.host}:${m.port}`,
      m.timeline === null ? '' : String(m.timeline),
      m.role === 'leader' ? '' : formatBytes(m.lag_bytes),
      m.role === 'leader'
        ? ''
        : m.lag_seconds === null || m.lag_seconds === undefined
          ? 'unknown'
          : String(m.lag_seconds),
    ]),
  ];
  const lines = [renderTable(rows)];
  if (s.health) lines.push(`health: ${s.health.verdict} (${s.health.reason})`);
  if (s.last_failover) lines.push(`last failover: ${lastFailoverText(s.last_failover)}`);
  return lines.join('\n');
}

export function connectionStrings(s: StatusJson): string[] {
  const leader = s.members.find((m) => m.role === 'leader');
  const lines: string[] = [];
  const base = `user=${s.user} dbname=postgres passfile=${s.passfile}`;
  if (s.proxy) {
    const [rh, rp] = s.proxy.rw.split(':');
    const [oh, op] = s.proxy.ro.split(':');
    lines.push(`read-write (proxy): psql "host=${rh} port=${rp} ${base}"`);
    lines.push(`read-only  (proxy): psql "host=${oh} port=${op} ${base}"`);
  }
  if (leader) lines.push(`leader (direct):    psql "host=${leader.host} port=${leader.port} ${base}"`);
  const hosts = s.members.map((m) => `${m.host}:${m.port}`).join(',');
  lines.push(
    `any primary (libpq multi-host): psql "postgresql://${s.user}@${hosts}/postgres?target_session_attrs=read-write&passfile=${s.passfile}"`,
  );
  return lines;
}

/** One line on backups: the last one's age and the recoverable window. */
export function backupLine(s: StatusJson, now = Date.now()): string | null {
  const b = s.backup;
  if (!b) return null;
  if (b.error) return `backup: cannot read ${b.repo}: ${b.error}`;
  if (!b.last_backup_time) return `backup: no backup yet (repository ${b.repo})`;
  const age = humanAge(now - Date.parse(b.last_backup_time));
  return `backup: last ${b.last_backup_id} ${age} ago; recoverable ${b.recoverable_from} .. ${b.recoverable_to} (repository ${b.repo})`;
}
