/**
 * `FakeInstance`: the LocalInstance port in process, for unit tests of the executor. It keeps the state the contract
 * speaks of (data directory, running, recovery, timeline, WAL position, slots, standby.signal, the configuration
 * last written) in plain fields a test can read and set, passes the same contract suite as PostgresInstance
 * (local-instance.contract.ts), and records every call in `calls` ("start", "writeConfig primary ssn=…") and to `onCall`,
 * so a test can assert orderings.
 *
 * Failures are injected per method: `failNext('start', err)` makes the next call reject (or throw) with `err`
 * after recording it, before changing anything — what a real program does when it fails before its first write.
 * Other members are `remote` entries keyed "host:port"; clone and rewind from an address not listed fail as
 * pg_basebackup and pg_rewind do when nothing answers.
 */
import type { AsideKind } from './aside.js';
import type { ConfInput } from './conf.js';
import {
  PostgresError,
  type ControlData,
  type DataDirState,
  type HostPort,
  type LocalInstance,
  type PgStatus,
  type ReplicationRow,
  type RestoreSource,
  type TimelineSwitch,
} from './local-instance.js';

type Method = Exclude<keyof LocalInstance, 'logFile'>;

export interface FakeRemote {
  readonly sysid: string;
  readonly timeline: number;
  readonly walPosition: number;
  readonly databaseBytes: number;
}

export class FakeInstance implements LocalInstance {
  readonly logFile = '/nonexistent/pgkeel-fake/postgresql.log';
  readonly dataDir: string;
  dataDirStatus: DataDirState = 'empty';
  running = false;
  inRecovery = false;
  standbySignal = false;
  sysid = '';
  timeline = 1;
  walPosition = 0;
  /** pg_controldata's "Database cluster state". */
  clusterState = 'shut down';
  /** What the last writeConfig rendered (the parts PostgreSQL reads), null before any. */
  conf: {
    readonly role: 'primary' | 'replica';
    readonly upstream: string | null;
    readonly synchronousStandbyNames: string;
    readonly parameters: string;
  } | null = null;
  reloads = 0;
  history: TimelineSwitch | null = null;
  replicationRole = false;
  readonly slotMap = new Map<string, number | null>();
  readonly lost = new Set<string>();
  /** Client transactions in flight; `transactionsInFlight()` reports it (a test may make it change over time). */
  inFlight: number | (() => number) = 0;
  replication: ReplicationRow[] = [];
  readonly remote = new Map<string, FakeRemote>();
  /** Backup repositories restoreFrom can read, keyed by path: what the restored cluster is on before promotion. */
  readonly repos = new Map<string, FakeRemote>();
  /** The last restoreFrom's source, as given. */
  restoredFrom: RestoreSource | null = null;
  /** Paths the data directory was moved to, oldest first. */
  readonly movedAside: string[] = [];
  readonly calls: string[] = [];
  /** Called with every call as it is recorded (a test interleaves them with its store's writes). */
  onCall: ((call: string) => void) | null = null;
  private readonly failures = new Map<Method, Error[]>();
  private sysids = 0;

  constructor(dataDir = '/fake/data') {
    this.dataDir = dataDir;
  }

  /** The next call of `method` fails with `err` (queued: call twice to fail twice). */
  failNext(method: Method, err: Error): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), err]);
  }

  private record(call: string): void {
    this.calls.push(call);
    this.onCall?.(call);
  }

  private enter(call: Method, note = ''): void {
    this.record(note ? `${call} ${note}` : call);
    const queued = this.failures.get(call);
    const err = queued?.shift();
    if (err) throw err;
  }

  private requireRunning(): void {
    if (!this.running)
      throw Object.assign(new Error(`connect ENOENT ${this.dataDir}/../run/.s.PGSQL.5432`), { errno: -2 });
  }

  dataDirState(): DataDirState {
    return this.dataDirStatus;
  }

  isRunning(): boolean {
    return this.running;
  }

  hasStandbySignal(): boolean {
    return this.standbySignal;
  }

  removeStandbySignal(): void {
    this.enter('removeStandbySignal');
    this.standbySignal = false;
  }

  async controlData(): Promise<ControlData | null> {
    this.enter('controlData');
    if (this.dataDirStatus === 'empty') return null;
    return { sysid: this.sysid, state: this.clusterState, timeline: this.timeline, checkpointLsn: this.walPosition };
  }

  writePgpass(): void {
    this.enter('writePgpass');
  }

  writeConfig(inp: ConfInput, role: 'primary' | 'replica'): { changed: boolean } {
    const ssn = inp.synchronousStandbyNames;
    this.enter('writeConfig', `${role}${ssn ? ` ssn=${ssn}` : ''}`);
    if (this.dataDirStatus === 'empty') throw new Error(`ENOENT: ${this.dataDir} has no cluster to configure`);
    const upstream = inp.upstream
      ? `${inp.upstream.host}:${inp.upstream.port}${inp.upstream.slot ? ` slot=${inp.upstream.slot}` : ''}`
      : null;
    const next = { role, upstream, synchronousStandbyNames: ssn, parameters: JSON.stringify(inp.dcsParameters) };
    const old = this.conf;
    const changed =
      !old ||
      old.upstream !== next.upstream ||
      old.synchronousStandbyNames !== next.synchronousStandbyNames ||
      old.parameters !== next.parameters;
    this.conf = next;
    this.standbySignal = role === 'replica';
    return { changed };
  }

  moveAside(why: AsideKind): string | null {
    this.enter('moveAside', why);
    if (this.dataDirStatus === 'empty' && this.sysid === '') return null;
    const to = `${this.dataDir}.${why}-${this.movedAside.length + 1}`;
    this.movedAside.push(to);
    this.dataDirStatus = 'empty';
    this.sysid = '';
    this.standbySignal = false;
    this.conf = null;
    this.slotMap.clear();
    return to;
  }

  async initdb(): Promise<void> {
    this.enter('initdb');
    if (this.dataDirStatus === 'ready')
      throw new PostgresError(
        'PG_INITDB_FAILED',
        `initdb failed for ${this.dataDir}`,
        `initdb: error: directory "${this.dataDir}" exists but is not empty`,
      );
    this.dataDirStatus = 'ready';
    this.sysid = `7${String(++this.sysids).padStart(18, '0')}`;
    this.timeline = 1;
    this.walPosition = 0x1000000;
    this.clusterState = 'shut down';
    this.inRecovery = false;
  }

  async start(_timeoutMs: number): Promise<void> {
    this.enter('start');
    if (this.running) return;
    if (this.dataDirStatus === 'empty')
      throw new PostgresError(
        'PG_START_FAILED',
        `PostgreSQL did not start in ${this.dataDir} (see ${this.logFile})`,
        'pg_ctl: directory is not a database cluster directory',
      );
    this.running = true;
    this.inRecovery = this.standbySignal;
    this.clusterState = this.inRecovery ? 'in archive recovery' : 'in production';
  }

  async stop(mode: 'fast' | 'immediate', _timeoutMs: number): Promise<void> {
    this.enter('stop', mode);
    if (!this.running) return;
    this.running = false;
    if (mode === 'fast') this.clusterState = this.inRecovery ? 'shut down in recovery' : 'shut down';
  }

  async reload(): Promise<void> {
    this.enter('reload');
    if (!this.running)
      throw new PostgresError('PG_COMMAND_FAILED', 'pg_ctl reload failed', 'pg_ctl: PID file does not exist');
    this.reloads++;
  }

  async promote(_timeoutMs: number): Promise<void> {
    this.enter('promote');
    if (!this.running || !this.inRecovery)
      throw new PostgresError(
        'PG_PROMOTE_FAILED',
        'pg_ctl promote failed',
        'pg_ctl: cannot promote server; server is not in standby mode',
      );
    this.history = { timeline: this.timeline, lsn: this.walPosition, reason: 'no recovery target specified' };
    this.timeline++;
    this.inRecovery = false;
    this.standbySignal = false;
    this.clusterState = 'in production';
  }

  async clone(from: HostPort, _timeoutMs: number): Promise<void> {
    this.enter('clone', `${from.host}:${from.port}`);
    if (this.dataDirStatus === 'ready') this.moveAside('before-clone');
    const src = this.remote.get(`${from.host}:${from.port}`);
    if (!src)
      throw new PostgresError(
        'PG_CLONE_FAILED',
        `pg_basebackup from ${from.host}:${from.port} failed`,
        'pg_basebackup: error: connection to server failed: Connection refused',
      );
    this.dataDirStatus = 'ready';
    this.sysid = src.sysid;
    this.timeline = src.timeline;
    this.walPosition = src.walPosition;
    this.clusterState = 'in production';
    this.inRecovery = false;
    this.standbySignal = false;
    this.slotMap.clear();
  }

  async cloneFromBackup(src: Pick<RestoreSource, 'repo' | 'keyFile'>, _timeoutMs: number): Promise<void> {
    this.enter('cloneFromBackup', src.repo);
    if (this.dataDirStatus === 'ready') this.moveAside('before-clone');
    const b = this.repos.get(src.repo);
    if (!b)
      throw new PostgresError(
        'PG_CLONE_FAILED',
        `restoring the newest backup of ${src.repo} failed`,
        `${src.repo} is not a pgkeel backup repository`,
      );
    this.dataDirStatus = 'ready';
    this.sysid = b.sysid;
    this.timeline = b.timeline;
    this.walPosition = b.walPosition;
    this.clusterState = 'in production';
    this.inRecovery = false;
    this.standbySignal = true;
    this.slotMap.clear();
  }

  async restoreFrom(src: RestoreSource, inp: ConfInput, _timeoutMs: number): Promise<void> {
    this.enter('restoreFrom', `${src.repo} ${src.target.kind}`);
    const fail = (why: string) =>
      new PostgresError('PG_RESTORE_FAILED', `bootstrap from ${src.repo} failed at "${why}"`);
    if (this.dataDirStatus === 'ready')
      throw new PostgresError(
        'PG_RESTORE_FAILED',
        `refusing to restore into ${this.dataDir}: it holds a database cluster`,
      );
    const b = this.repos.get(src.repo);
    if (!b) throw fail(`open the repository ${src.repo}`);
    this.dataDirStatus = 'ready';
    this.sysid = b.sysid;
    this.writeConfig(inp, 'primary');
    this.history = { timeline: b.timeline, lsn: b.walPosition, reason: 'at restore point' };
    this.timeline = b.timeline + 1;
    this.walPosition = b.walPosition;
    this.clusterState = 'shut down';
    this.inRecovery = false;
    this.standbySignal = false;
    this.restoredFrom = src;
  }

  async rewind(from: HostPort, _timeoutMs: number): Promise<void> {
    this.enter('rewind', `${from.host}:${from.port}`);
    const src = this.remote.get(`${from.host}:${from.port}`);
    if (!src || this.running || this.dataDirStatus === 'empty')
      throw new PostgresError(
        'PG_REWIND_FAILED',
        `pg_rewind from ${from.host}:${from.port} failed`,
        'pg_rewind: error: could not connect to server',
      );
    this.timeline = src.timeline;
    this.walPosition = src.walPosition;
    this.clusterState = 'in archive recovery';
  }

  async disconnect(): Promise<void> {
    this.record('disconnect');
  }

  async status(_timeoutMs?: number): Promise<PgStatus> {
    this.enter('status');
    this.requireRunning();
    return {
      inRecovery: this.inRecovery,
      timeline: this.timeline,
      walPosition: this.walPosition,
      receivedLsn: this.inRecovery ? this.walPosition : null,
      replayedLsn: this.inRecovery ? this.walPosition : null,
      streaming: false,
      receiverSilentMs: null,
      upstreamHost: null,
      upstreamPort: null,
      replication: this.inRecovery ? [] : this.replication,
      postmasterStart: '2026-01-01 00:00:00+00',
      serverVersion: 150000,
      pendingRestart: false,
      replayPaused: false,
      replayTimestamp: null,
    };
  }

  async checkpoint(_timeoutMs: number): Promise<void> {
    this.enter('checkpoint');
    this.requireRunning();
  }

  async switchWal(_timeoutMs: number, _restorePoint?: string): Promise<void> {
    this.enter('switchWal');
    this.requireRunning();
  }

  async latestTimelineSwitch(): Promise<TimelineSwitch | null> {
    this.enter('latestTimelineSwitch');
    this.requireRunning();
    return this.timeline > 1 ? this.history : null;
  }

  async transactionsInFlight(_timeoutMs: number): Promise<number> {
    this.enter('transactionsInFlight');
    this.requireRunning();
    return typeof this.inFlight === 'function' ? this.inFlight() : this.inFlight;
  }

  async ensureReplicationRole(): Promise<void> {
    this.enter('ensureReplicationRole');
    this.requireRunning();
    this.replicationRole = true;
  }

  async slots(): Promise<Map<string, number | null>> {
    this.enter('slots');
    this.requireRunning();
    return new Map(this.slotMap);
  }

  async lostSlots(): Promise<Set<string>> {
    this.enter('lostSlots');
    this.requireRunning();
    return new Set(this.lost);
  }

  async createSlot(name: string): Promise<void> {
    this.enter('createSlot', name);
    this.requireRunning();
    if (!this.slotMap.has(name)) this.slotMap.set(name, this.walPosition);
  }

  async dropSlot(name: string): Promise<void> {
    this.enter('dropSlot', name);
    this.requireRunning();
    this.slotMap.delete(name);
    this.lost.delete(name);
  }

  async remoteDatabaseBytes(from: HostPort, _timeoutMs?: number): Promise<number | null> {
    this.record(`remoteDatabaseBytes ${from.host}:${from.port}`);
    return this.remote.get(`${from.host}:${from.port}`)?.databaseBytes ?? null;
  }
}
