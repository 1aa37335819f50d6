/**
 * The lease step's I/O against MemoryStore with a fake clock: what each action writes, what it compares on, and
 * that a store error is reported rather than thrown.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeConfig } from '../config/node.js';
import { clusterKeys, parseCluster } from '../dcs/layout.js';
import { MemoryStore } from '../dcs/memory.js';
import { createLogger } from '../lib/log.js';
import { decideLease, leaseOutcome } from './decide-lease.js';
import { adoptLeaderKey, renewLease, runLeaseActions } from './execute-dcs.js';
import { newMemory, type AgentContext } from './state.js';
import type { LeaseView } from './view.js';

const TTL = 30;

function setup(): { ctx: AgentContext; store: MemoryStore; advance(ms: number): void; logged: string[] } {
  let t = 1_000_000;
  const now = () => t;
  const store = new MemoryStore({ now });
  const logged: string[] = [];
  const log = createLogger({ write: (line) => void logged.push((JSON.parse(line) as { msg: string }).msg) });
  // Only what the lease step touches: the member name, the keys, the store, the memory, the log.
  const ctx = {
    cfg: { name: 'node2' } as NodeConfig,
    keys: clusterKeys('t'),
    store,
    pg: undefined as never,
    log,
    now,
    mem: newMemory(),
  };
  return { ctx, store, advance: (ms) => void (t += ms), logged };
}

/** The lease step as the loop runs it, on a fresh read of the store. */
async function leaseStep(ctx: AgentContext) {
  const cluster = parseCluster(ctx.keys, await ctx.store.getPrefix(ctx.keys.prefix));
  const v: LeaseView = {
    now: ctx.now(),
    me: 'node2',
    ttl: TTL,
    dcs: { ok: true, cluster },
    lease: ctx.mem.lease,
    lastRenew: ctx.mem.lastRenew,
  };
  const actions = decideLease(v);
  return { actions: actions.map((a) => a.kind), outcome: leaseOutcome(v, await runLeaseActions(ctx, actions)) };
}

describe('renew_lease', () => {
  it('without a lease: grants one', async () => {
    const { ctx } = setup();
    assert.equal(await renewLease(ctx, TTL), false);
    assert.notEqual(ctx.mem.lease, null);
  });

  it('a live lease is kept alive: it outlives its first ttl', async () => {
    const { ctx, store, advance } = setup();
    await renewLease(ctx, TTL);
    const lease = ctx.mem.lease as string;
    await store.put(ctx.keys.member('node2'), '{}', { lease });
    advance(20_000);
    assert.equal(await renewLease(ctx, TTL), true);
    advance(20_000);
    assert.equal(ctx.mem.lease, lease);
    assert.notEqual(await store.get(ctx.keys.member('node2')), undefined);
  });

  it('an expired lease: a new one is granted, and the keys on the old one are gone', async () => {
    const { ctx, store, advance } = setup();
    await renewLease(ctx, TTL);
    const old = ctx.mem.lease as string;
    await store.create(ctx.keys.leader, 'node2', { lease: old });
    advance(TTL * 1000);
    assert.equal(await renewLease(ctx, TTL), false);
    assert.notEqual(ctx.mem.lease, old);
    assert.equal(await store.get(ctx.keys.leader), undefined);
  });
});

describe('adopt_leader_key', () => {
  async function keyOnOldLease(store: MemoryStore, ctx: AgentContext): Promise<number> {
    const previousRun = await store.grantLease(TTL);
    await store.create(ctx.keys.leader, 'node2', { lease: previousRun });
    return (await store.get(ctx.keys.leader))?.modRevision ?? -1;
  }

  it('puts my key onto my lease when it is still the one read, and says so', async () => {
    const { ctx, store, logged } = setup();
    const rev = await keyOnOldLease(store, ctx);
    await renewLease(ctx, TTL);
    assert.equal(await adoptLeaderKey(ctx, rev), true);
    const kv = await store.get(ctx.keys.leader);
    assert.equal(kv?.lease, ctx.mem.lease);
    assert.equal(kv?.value, 'node2');
    assert.deepEqual(logged, ['adopted my existing leader key with a new lease']);
  });

  it('compares on the revision read: a key rewritten since is left alone', async () => {
    const { ctx, store, logged } = setup();
    const rev = await keyOnOldLease(store, ctx);
    await store.put(ctx.keys.leader, 'node2');
    await renewLease(ctx, TTL);
    assert.equal(await adoptLeaderKey(ctx, rev), false);
    assert.equal((await store.get(ctx.keys.leader))?.lease, '0');
    assert.deepEqual(logged, []);
  });

  it('compares on the value: a key that names another member now is left alone', async () => {
    const { ctx, store } = setup();
    await keyOnOldLease(store, ctx);
    await store.put(ctx.keys.leader, 'node1');
    const rev = (await store.get(ctx.keys.leader))?.modRevision ?? -1;
    await renewLease(ctx, TTL);
    assert.equal(await adoptLeaderKey(ctx, rev), false);
    assert.equal((await store.get(ctx.keys.leader))?.value, 'node1');
  });
});

describe('the lease step, decided and run', () => {
  it('agent restart with my key still on the old lease: a new lease, the key adopted, the lock held', async () => {
    const { ctx, store } = setup();
    const previousRun = await store.grantLease(TTL);
    await store.create(ctx.keys.leader, 'node2', { lease: previousRun });
    const { actions, outcome } = await leaseStep(ctx);
    assert.deepEqual(actions, ['renew_lease', 'adopt_leader_key']);
    assert.equal(outcome.holdsLock, true);
    assert.equal((await store.get(ctx.keys.leader))?.lease, ctx.mem.lease);
  });

  it('steady leader: renewal only, no write to the leader key', async () => {
    const { ctx, store } = setup();
    await renewLease(ctx, TTL);
    await store.create(ctx.keys.leader, 'node2', { lease: ctx.mem.lease as string });
    const rev = (await store.get(ctx.keys.leader))?.modRevision;
    const { actions, outcome } = await leaseStep(ctx);
    assert.deepEqual(actions, ['renew_lease']);
    assert.equal(outcome.holdsLock, true);
    assert.equal((await store.get(ctx.keys.leader))?.modRevision, rev);
  });

  it('my lease expired after the read: the key went with it, nothing to adopt, the renewal failed', async () => {
    const { ctx, store, advance } = setup();
    await renewLease(ctx, TTL);
    await store.create(ctx.keys.leader, 'node2', { lease: ctx.mem.lease as string });
    ctx.mem.lastRenew = { ok: true, at: ctx.now() };
    const cluster = parseCluster(ctx.keys, await store.getPrefix(ctx.keys.prefix));
    advance(TTL * 1000); // the lease runs out between the read and the renewal
    const v: LeaseView = {
      now: ctx.now(),
      me: 'node2',
      ttl: TTL,
      dcs: { ok: true, cluster },
      lease: ctx.mem.lease,
      lastRenew: ctx.mem.lastRenew,
    };
    const actions = decideLease(v);
    assert.deepEqual(
      actions.map((a) => a.kind),
      ['renew_lease'],
    );
    const outcome = leaseOutcome(v, await runLeaseActions(ctx, actions));
    assert.deepEqual(outcome, { dcs: v.dcs, holdsLock: false, lastRenew: { ok: false, at: v.now } });
    assert.equal(await store.get(ctx.keys.leader), undefined);
  });

  it('the store fails: the error is returned, not thrown, and nothing after it runs', async () => {
    const { ctx, store } = setup();
    const previousRun = await store.grantLease(TTL);
    await store.create(ctx.keys.leader, 'node2', { lease: previousRun });
    const rev = (await store.get(ctx.keys.leader))?.modRevision ?? -1;
    store.setUnavailable(true);
    const r = await runLeaseActions(ctx, [
      { kind: 'renew_lease', ttl: TTL },
      { kind: 'adopt_leader_key', modRevision: rev },
    ]);
    assert.ok('error' in r && r.error.length > 0);
    assert.equal(ctx.mem.lease, null);
    store.setUnavailable(false);
    assert.equal((await store.get(ctx.keys.leader))?.lease, previousRun);
  });
});
