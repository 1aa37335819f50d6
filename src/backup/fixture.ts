/** Test support for src/backup unit tests: cluster views without a DCS. */
import type { ClusterView, MemberView } from '../cluster/view.js';

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
