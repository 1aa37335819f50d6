/**
 * Unit-test harness for the executor (src/ha/execute*.ts): a MemoryStore and a FakeInstance on one fake clock, a
 * logger that keeps every line, and the agent's memory — no process, no socket. `input()` reads the cluster back
 * from the store as the loop would; `act()` runs a decision and waits for its background part.
 */
import { configFromObject } from '../../src/config/load.js';
import { clusterKeys, encodeJson, parseCluster, type ClusterKeys, type MemberRecord } from '../../src/dcs/layout.js';
import { MemoryStore } from '../../src/dcs/memory.js';
import { StoreError } from '../../src/dcs/store.js';
import type { NodeConfig } from '../../src/config/node.js';
import type { Logger } from '../../src/lib/log.js';
import { FakeInstance } from '../../src/postgres/fake-instance.js';
import type { PgStatus } from '../../src/postgres/local-instance.js';
import { Executor, type ExecInput } from '../../src/ha/execute.js';
import { effectiveDynamic } from '../../src/ha/settings.js';
import { newMemory, type AgentContext, type AgentMemory } from '../../src/ha/state.js';
import type { Action } from '../../src/ha/view.js';

export { type LogLine, recordingLogger } from './wait.js';
import { type LogLine, recordingLogger } from './wait.js';

export const T0 = Date.parse('2026-01-14T10:00:00Z');

export interface ExecHarness extends AsyncDisposable {
  readonly cfg: NodeConfig;
  readonly keys: ClusterKeys;
  readonly store: MemoryStore;
  readonly pg: FakeInstance;
  readonly mem: AgentMemory;
  readonly ctx: AgentContext;
  readonly executor: Executor;
  readonly logs: LogLine[];
  /** Store writes and instance calls, interleaved in the order they happened ("dcs put /service/t/sync", "pg reload"). */
  readonly events: string[];
  /** The fake clock (ms since the epoch; the agent's wall clock). */
  now(): number;
  advance(ms: number): void;
  /** Publishes a member record (conn_url postgres://<name>:5432/postgres unless given). */
  member(name: string, record?: Partial<MemberRecord>): Promise<void>;
  /** Registers another member's PostgreSQL at <name>:5432 with the fake (clone and rewind can reach it). */
  reachable(name: string, timeline?: number): void;
  /** The executor's input as the loop builds it: the cluster read from the store, the effective dynamic config. */
  input(over?: {
    pgStatus?: PgStatus | null;
    shuttingDown?: boolean;
    dynamic?: Partial<ExecInput['dynamic']>;
  }): Promise<ExecInput>;
  /** The next `method` call on `key` rejects with DCS_UNAVAILABLE, after it is recorded in `events` ("dcs! …"). */
  failStoreNext(method: 'put' | 'create' | 'compareAndPut' | 'delete' | 'compareAndDelete', key: string): void;
  /** Runs one decision's actions and waits for the background operation. */
  act(actions: readonly Action[], inp?: ExecInput): Promise<void>;
  messages(level?: LogLine['level']): string[];
}

export async function execHarness(name = 'node1'): Promise<ExecHarness> {
  let t = T0;
  const now = () => t;
  const cfg = configFromObject(
    {
      scope: 't',
      name,
      postgresql: {
        listen: '127.0.0.1:5432',
        data_dir: '/fake/data',
        authentication: { superuser: { password: 'x' }, replication: { password: 'y' } },
      },
    },
    'test',
    {},
    '/fake',
  );
  const keys = clusterKeys(cfg.scope, cfg.namespace);
  const events: string[] = [];
  const storeFailures: string[] = [];
  const inner = new MemoryStore({ now });
  // Every write is recorded beside the instance's calls, so a test can assert what happened first.
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const write = ['put', 'create', 'compareAndPut', 'delete', 'compareAndDelete'].includes(String(prop));
      return (...args: unknown[]) => {
        const call = `${String(prop)} ${String(args[0])}`;
        const fail = storeFailures.indexOf(call);
        if (fail >= 0) {
          storeFailures.splice(fail, 1);
          events.push(`dcs! ${call}`);
          return Promise.reject(new StoreError('DCS_UNAVAILABLE', `injected: ${call}`));
        }
        if (write) events.push(`dcs ${call}`);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const pg = new FakeInstance();
  pg.onCall = (call) => void events.push(`pg ${call}`);
  const logs: LogLine[] = [];
  const mem = newMemory();
  const ctx: AgentContext = { cfg, keys, store, pg, log: recordingLogger(logs), now, mem };
  // The drain's poll: time passes on the fake clock only.
  const executor = new Executor(ctx, { sleep: async (ms) => void (t += ms) });
  const h: ExecHarness = {
    cfg,
    keys,
    store,
    pg,
    mem,
    ctx,
    executor,
    logs,
    events,
    now,
    advance: (ms) => void (t += ms),
    member: async (m, record = {}) => {
      const rec: MemberRecord = {
        conn_url: `postgres://${m}:5432/postgres`,
        api_url: `http://${m}:8008/patroni`,
        state: 'running',
        role: 'replica',
        timeline: 1,
        ...record,
      };
      await inner.put(keys.member(m), encodeJson(rec));
    },
    reachable: (m, timeline = 1) =>
      pg.remote.set(`${m}:5432`, {
        sysid: '7000000000000000001',
        timeline,
        walPosition: 0x3000000,
        databaseBytes: 1 << 20,
      }),
    input: async (over = {}) => {
      const cluster = parseCluster(keys, await inner.getPrefix(keys.prefix));
      const dyn = effectiveDynamic(cfg, cluster).config;
      const pgStatus = over.pgStatus !== undefined ? over.pgStatus : pg.running ? await pg.status() : null;
      return { cluster, dynamic: { ...dyn, ...over.dynamic }, pgStatus, shuttingDown: over.shuttingDown ?? false };
    },
    act: async (actions, inp) => {
      await executor.run({ summary: 'test', actions, role: mem.role }, inp ?? (await h.input()));
      await executor.idle();
    },
    failStoreNext: (method, key) => void storeFailures.push(`${method} ${key}`),
    messages: (level) => logs.filter((l) => !level || l.level === level).map((l) => l.msg),
    [Symbol.asyncDispose]: () => inner.close(),
  };
  return h;
}
