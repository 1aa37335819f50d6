/**
 * Which member a backup reads from (backup.from / --from). Pure.
 *
 * replica (and auto): the healthy streaming replica with the least lag, taking load off the primary; the leader when
 * there is none. leader: the leader. A name: that member, if it runs.
 */
import type { ClusterView, MemberView } from '../cluster/view.js';
import { BackupError } from './errors.js';

export function chooseSource(view: ClusterView, from: string): MemberView {
  const leader = view.members.find((m) => m.name === view.leader && m.state === 'running');
  if (from === 'leader') {
    if (!leader) throw new BackupError('BACKUP_NO_SOURCE', 'no running leader to back up from');
    return leader;
  }
  if (from === 'replica' || from === 'auto') {
    const replicas = view.members
      .filter((m) => m.name !== view.leader && m.state === 'streaming' && m.host !== '')
      .sort((a, b) => (a.lag_bytes ?? Number.MAX_SAFE_INTEGER) - (b.lag_bytes ?? Number.MAX_SAFE_INTEGER));
    const best = replicas[0] ?? leader;
    if (!best) throw new BackupError('BACKUP_NO_SOURCE', 'no streaming replica and no running leader to back up from');
    return best;
  }
  const named = view.members.find((m) => m.name === from);
  if (!named) throw new BackupError('BACKUP_NO_SOURCE', `no member named "${from}" in cluster ${view.scope}`);
  if (named.state !== 'running' && named.state !== 'streaming')
    throw new BackupError(
      'BACKUP_NO_SOURCE',
      `member ${from} is ${named.state}, not running: it cannot serve a backup`,
    );
  return named;
}
