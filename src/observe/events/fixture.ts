/** Test fixture (not a test itself): an EventState of a healthy replica node2 following node1, to override. */
import type { EventState } from './state.js';

export function testState(o: Partial<EventState> = {}): EventState {
  return {
    at: 1_000,
    me: 'node2',
    timeline: 1,
    dcsOk: true,
    dcsError: null,
    leader: 'node1',
    holdsLock: false,
    busy: null,
    lastError: null,
    memberState: 'running',
    shuttingDown: false,
    pendingRestart: false,
    failover: null,
    config: { ttl: 30, loop_wait: 10 },
    lastBackup: null,
    ...o,
  };
}
