/** Test support for src/backup unit tests: cluster views without a DCS. */
import type { ClusterView, MemberView } from '../cluster/view.js';
import type { BackupSettings } from './config.js';

/** A member as the cluster view shows it; n1 is the leader. */
export function viewMember(name: string, state: string, lag: number | null = 0): MemberView {
  return {
    name,
    role: name === 'n1' ? 'leader' : 'replica',
    state,
    host: '127.0.0.1',
    port: 5432,
    api_url: '',
    timeline: 1,
    lag_bytes: lag,
    tags: {},
    pid: 1,
    data_dir: null,
    pending_restart: false,
  };
}

export function viewOf(...members: MemberView[]): ClusterView {
  return { scope: 's', leader: 'n1', members, pause: false, failover: null };
}

/** Backup settings for tests: lz4 level 1, no schedule, retention full 2. */
export function testSettings(repo: string): BackupSettings {
  return {
    repo,
    compression: 'lz4',
    level: 1,
    schedule: { full: '', incr: '', diff: '' },
    retention: { full: 2 },
    from: 'replica',
    verify_schedule: '',
  };
}
