/**
 * The backup duties of a running agent, called once per HA cycle (`cycle`), never blocking it:
 *
 * - every member with a repository runs the WAL archiver (wal-archiver.ts) beside its PostgreSQL, whose
 *   archive_command (archiving.ts) finds the archiver's .ok files;
 * - the leader starts scheduled backups (schedule.ts) in the background; losing leadership aborts a running one
 *   (it is marked failed; the new leader's schedule catches up).
 */
import { clusterView } from '../cluster/view.js';
import type { DynamicConfig, NodeConfig } from '../config/node.js';
import type { Cluster, ClusterKeys } from '../dcs/layout.js';
import { parseCluster } from '../dcs/layout.js';
import type { Store } from '../dcs/store.js';
import type { Logger } from '../lib/log.js';
import { ensureDirFor } from '../lib/proc.js';
import type { LocalInstance } from '../postgres/local-instance.js';
import { nodeBackupSettings, spoolDirFor } from './archiving.js';
import { type BackupRecord, type BackupType, listRecords } from './catalog.js';
import type { BackupSettings } from './config.js';
import { connectSource, superuserSession, switchWal } from './pg-source.js';
import { type BackupReport, backupReport } from './report.js';
import { openStore, runBackup } from './run.js';
import { nextRun, parseCron } from './cron.js';
import { dueBackup, type ScheduleState } from './schedule.js';
import { verifyRepository } from './verify.js';
import { verifyByRestore } from './verify-restore.js';
import { type ArchiverStats, WalArchiver } from './wal-archiver.js';

export interface BackupServiceDeps {
  readonly cfg: NodeConfig;
  readonly store: Store;
  readonly keys: ClusterKeys;
  readonly pg: LocalInstance;
  readonly log: Logger;
  readonly now: () => number;
}

export interface BackupServiceStatus {
  readonly repo: string | null;
  /** The effective backup.schedule (cron per type), for the schedule metrics; absent without a repository. */
  readonly schedule?: BackupSettings['schedule'];
  readonly archiver: ArchiverStats | null;
  readonly running: BackupType | null;
  /** The repository summary, refreshed every minute (null until read, or without a repository). */
  readonly report: BackupReport | null;
  /** The last scheduled `verify --restore` (null until one ran on this agent). */
  readonly lastVerify: { readonly at: number; readonly ok: boolean; readonly rtoSeconds: number | null } | null;
  readonly lastBackup: {
    readonly type: BackupType;
    readonly ok: boolean;
    readonly at: number;
    readonly id?: string;
    readonly durationS?: number;
    readonly bytes?: number;
    readonly error?: string;
  } | null;
}

const RECORDS_TTL_MS = 60_000;

export class BackupService {
  #archiver: WalArchiver | null = null;
  #archiverKey = '';
  #starting: Promise<void> | null = null;
  #running: { type: BackupType; abort: AbortController } | null = null;
  #schedule: ScheduleState = { failedAt: {} };
  #records: { at: number; list: BackupRecord[] } | null = null;
  #last: BackupServiceStatus['lastBackup'] = null;
  #repo: string | null = null;
  #cron: BackupSettings['schedule'] | undefined;
  #stopped = false;
  #report: { at: number; value: BackupReport | null } | null = null;
  #verifySince: number | null = null;
  #verifying = false;
  #verify: BackupServiceStatus['lastVerify'] = null;

  constructor(private readonly d: BackupServiceDeps) {}

  status(): BackupServiceStatus {
    return {
      repo: this.#repo,
      ...(this.#cron ? { schedule: this.#cron } : {}),
      archiver: this.#archiver?.stats ?? null,
      running: this.#running?.type ?? null,
      report: this.#report?.value ?? null,
      lastVerify: this.#verify,
      lastBackup: this.#last,
    };
  }

  /** One HA cycle's worth: keep the archiver matching the settings; on the leader, start a due backup. */
  cycle(dynamic: DynamicConfig, isLeader: boolean, cluster: Cluster | undefined): void {
    if (this.#stopped) return;
    const { settings } = nodeBackupSettings(this.d.cfg, dynamic.backup);
    this.#repo = settings?.repo ?? null;
    this.#cron = settings?.schedule;
    this.#syncArchiver(settings);
    if (settings) this.#refreshReport(settings);
    else this.#report = null;
    if (!isLeader && this.#running) {
      this.d.log.warn(`backup: no longer the leader; aborting the running ${this.#running.type} backup`);
      this.#running.abort.abort(new Error('this member stopped being the leader'));
    }
    if (settings && isLeader && cluster && !this.#running) this.#maybeStartBackup(settings);
    if (settings && isLeader && !this.#running && !this.#verifying) this.#maybeVerify(settings);
    if (!isLeader) this.#verifySince = null;
  }

  /**
   * backup.verify_schedule: the leader runs `backup verify --restore` when a scheduled time passes while it leads
   * (one at a time, never beside a backup of its own). The result is kept for /metrics.
   */
  #maybeVerify(settings: BackupSettings): void {
    const cron = settings.verify_schedule.trim();
    const now = this.d.now();
    if (!cron) return;
    if (this.#verifySince === null) {
      this.#verifySince = now;
      return;
    }
    const due = nextRun(parseCron(cron), new Date(this.#verifySince));
    if (!due || due.getTime() > now) return;
    this.#verifySince = now;
    this.#verifying = true;
    const { log } = this.d;
    log.info('scheduled backup verification starting (verify --restore)');
    openStore(settings, false)
      .then(async (store) => {
        const files = await verifyRepository(store);
        const restore = files.problems.length
          ? null
          : await verifyByRestore(store, settings.encryption_key_file, (l) => log.info(l));
        const problems = [...files.problems, ...(restore?.problems ?? [])];
        this.#verify = { at: this.d.now(), ok: problems.length === 0, rtoSeconds: restore?.rto_seconds ?? null };
        if (problems.length)
          log.error(`backup verification FAILED: ${problems.map((p) => p.problem).join('; ')}`, {
            problems: problems.length,
          });
        else log.info(`backup verification ok: ${restore?.summary ?? ''}`);
      })
      .catch((err: Error) => {
        this.#verify = { at: this.d.now(), ok: false, rtoSeconds: null };
        log.error(`backup verification could not run: ${err.message}`);
      })
      .finally(() => {
        this.#verifying = false;
      });
  }

  /** Stops the archiver (after PostgreSQL stopped) and aborts a running backup. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#running?.abort.abort(new Error('the agent is stopping'));
    await this.#starting?.catch(() => {});
    await this.#archiver?.stop();
    this.#archiver = null;
  }

  /** Logs a problem when it first appears or changes, not on every 250 ms retry. */
  #warned = new Map<string, string>();
  #warnOnce(file: string, message: string): void {
    if (this.#warned.get(file) === message) return;
    if (this.#warned.size > 1000) this.#warned.clear();
    this.#warned.set(file, message);
    this.d.log.warn(message, { file });
  }

  #syncArchiver(settings: BackupSettings | null): void {
    const key = settings
      ? JSON.stringify([settings.repo, settings.encryption_key_file, settings.compression, settings.level])
      : '';
    if (key === this.#archiverKey || this.#starting) return;
    this.#archiverKey = key;
    const old = this.#archiver;
    this.#archiver = null;
    this.#starting = (async () => {
      await old?.stop();
      if (!settings) return;
      const dataDir = this.d.cfg.postgresql.data_dir;
      const spoolDir = spoolDirFor(dataDir);
      ensureDirFor(spoolDir, 0o750);
      const store = await openStore(settings);
      const archiver = new WalArchiver({
        store,
        dataDir,
        spoolDir,
        compression: settings.compression,
        level: settings.level,
        onError: (file, err) => this.#warnOnce(file, `WAL archiving of ${file} failed: ${err.message}`),
        onAbandoned: (file, at) =>
          this.d.log.warn(
            `WAL file ${file} counts as archived: the stored copy (from the member that followed the new timeline) equals this one up to ${at}, where this server's timeline was left; the rest is WAL the cluster abandoned at the failover`,
            { wal: file, switchpoint: at },
          ),
      });
      if (this.#stopped) return;
      this.#archiver = archiver;
      archiver.start();
      this.d.log.info(`WAL archiver started: repository ${settings.repo}`);
    })()
      .catch((err: Error) => {
        this.#archiverKey = ''; // retried next cycle
        this.d.log.warn(`could not start the WAL archiver: ${err.message}`, { err });
      })
      .finally(() => {
        this.#starting = null;
      });
  }

  /** The repository summary for metrics and status, re-read once a minute (and after each backup). */
  #refreshReport(settings: BackupSettings): void {
    const now = this.d.now();
    if (this.#report && (this.#report.at === -1 || now - this.#report.at < RECORDS_TTL_MS)) return;
    const previous = this.#report?.value ?? null;
    this.#report = { at: -1, value: previous };
    openStore(settings, false)
      .then((store) => backupReport(store))
      .then(
        (value) => {
          this.#report = { at: this.d.now(), value };
        },
        () => {
          this.#report = { at: this.d.now(), value: previous }; // not created yet, or unreadable: try next minute
        },
      );
  }

  #maybeStartBackup(settings: BackupSettings): void {
    const now = this.d.now();
    if (this.#records && now - this.#records.at < RECORDS_TTL_MS) {
      const type = dueBackup(settings.schedule, this.#records.list, now, this.#schedule, ['full', 'incr', 'diff']);
      if (type) this.#startBackup(settings, type);
      return;
    }
    if (this.#records?.at === -1) return; // a read is in flight
    this.#records = { at: -1, list: this.#records?.list ?? [] };
    openStore(settings)
      .then((store) => listRecords(store))
      .then(
        (list) => {
          this.#records = { at: this.d.now(), list };
        },
        (err: Error) => {
          this.#records = null;
          this.d.log.warn(`backup schedule: cannot read the repository: ${err.message}`);
        },
      );
  }

  #startBackup(settings: BackupSettings, type: BackupType): void {
    const abort = new AbortController();
    this.#running = { type, abort };
    const { cfg, store, keys, log } = this.d;
    log.info(`scheduled ${type} backup starting`, { type });
    runBackup(
      {
        settings,
        dcs: store,
        leaseKey: keys.backup,
        readView: async () => clusterView(cfg.scope, parseCluster(keys, await store.getPrefix(keys.prefix))),
        connectSource: (m) => connectSource(cfg, m, abort.signal),
        connectSql: (m) => superuserSession(cfg, m.name === cfg.name ? { ...m, host: cfg.postgresql.socket_dir } : m),
        switchWal: (m, point) => (m.name === cfg.name ? this.d.pg.switchWal(10_000, point) : switchWal(cfg, m, point)),
        now: () => new Date(this.d.now()),
        progress: (l) => log.info(`backup: ${l}`),
        who: `agent ${cfg.name}`,
      },
      { type },
    )
      .then(
        (rec) => {
          delete this.#schedule.failedAt[type];
          this.#last = {
            type,
            ok: true,
            at: this.d.now(),
            id: rec.id,
            durationS: rec.duration_s ?? undefined,
            bytes: rec.bytes,
          };
          log.info(
            `${type} backup ${rec.id} done in ${rec.duration_s} s (${rec.repo_bytes} bytes stored, from ${rec.member})`,
            {
              backup: rec.id,
            },
          );
        },
        (err: Error) => {
          this.#schedule = { failedAt: { ...this.#schedule.failedAt, [type]: this.d.now() } };
          this.#last = { type, ok: false, at: this.d.now(), error: err.message };
          log.warn(`scheduled ${type} backup failed (retried in 5 min): ${err.message}`, { type });
        },
      )
      .finally(() => {
        this.#running = null;
        this.#records = null; // re-read: the new backup (or a failed record) is there
        this.#report = null;
      });
  }
}
