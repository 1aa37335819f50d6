/**
 * The node config schema: one YAML file per node, shaped like Patroni's so an existing patroni.yml carries over.
 * docs/config.md is generated from this tree (`npm run docs:config`).
 */
import { backupDynamicFields, backupLocalFields, type BackupConfig, type BackupLocalConfig } from '../backup/config.js';
import { portProblem, type Schema } from './schema.js';
import { GUC_EXPECTED, GUC_NAME } from './pg-params.js';
import { etcdSecurityFields, type EtcdSecurity } from './etcd-section.js';
import { bootstrapRestoreSchema, type BootstrapRestoreConfig } from './bootstrap-restore.js';
import { metricsSchema, type MetricsConfig } from '../observe/pg-metrics/config.js';
import { vipSchema, type VipConfig } from '../vip/config.js';

const HOSTPORT = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/;
const hostport = (doc: string, def?: string): Schema => ({
  kind: 'string',
  doc,
  pattern: HOSTPORT,
  expected: 'host:port, e.g. 127.0.0.1:5432',
  check: (v) => portProblem(v),
  ...(def !== undefined ? { default: def } : {}),
});
/** postgresql.conf parameters: names PostgreSQL's lexer reads as one identifier, values without control characters. */
const parameters = (doc: string): Schema => ({
  kind: 'map',
  doc,
  values: 'scalar',
  default: {},
  keys: { pattern: GUC_NAME, expected: GUC_EXPECTED },
});
/** postgresql.listen: Patroni's form, hosts separated by commas and the port after the last ("*" = every address). */
const LISTEN_HOST = String.raw`(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+|\*)`;
const LISTEN = new RegExp(`^${LISTEN_HOST}(?:,${LISTEN_HOST})*:\\d{1,5}$`);
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** postgresql.create_replica_methods. */
export const REPLICA_METHODS = ['backup', 'basebackup'] as const;
export type ReplicaMethod = (typeof REPLICA_METHODS)[number];
/** libpq's sslmode values (https://www.postgresql.org/docs/15/libpq-ssl.html#LIBPQ-SSL-PROTECTION). */
export const WATCHDOG_MODES = ['off', 'automatic', 'required'] as const;
export type WatchdogMode = (typeof WATCHDOG_MODES)[number];

export const SSLMODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSLMODES)[number];

const credentials = (doc: string, user: string): Schema => ({
  kind: 'object',
  doc,
  fields: {
    username: {
      kind: 'string',
      doc: 'Role name.',
      default: user,
      pattern: NAME,
      expected: 'a role name (letters, digits, _ . -)',
    },
    password: { kind: 'string', doc: 'Password (never logged).', secret: true, required: true },
    sslmode: {
      kind: 'enum',
      doc: 'libpq sslmode for connections to other members with this role (default: verify-full when sslrootcert is set, else prefer).',
      values: SSLMODES,
    },
    sslrootcert: {
      kind: 'string',
      doc: "CA certificate(s) (PEM) the other members' server certificates are checked against; setting it makes sslmode default to verify-full.",
      expected: 'a path (relative to the config file)',
    },
    sslcert: {
      kind: 'string',
      doc: 'Client certificate (PEM) presented to other members; with sslkey.',
      expected: 'a path (relative to the config file)',
    },
    sslkey: {
      kind: 'string',
      doc: 'Private key (PEM, unencrypted) for sslcert; when pgkeel runs as root it hands PostgreSQL a postgres-owned 0600 copy.',
      expected: 'a path (relative to the config file)',
    },
    sslcrl: {
      kind: 'string',
      doc: "Certificate revocation list (PEM) for the other members' server certificates.",
      expected: 'a path (relative to the config file)',
    },
  },
});

// --- permanent slots (issue 14, Patroni's `slots` / `ignore_slots`): see src/ha/logical-slots.ts. ---
export const SLOT_TYPES = ['physical', 'logical'] as const;
/** A replication slot name as PostgreSQL accepts it (ReplicationSlotValidateName). */
const SLOT_NAME = /^[a-z0-9_]{1,63}$/;
const SLOT_NAME_EXPECTED = 'a replication slot name (lower-case letters, digits and _, at most 63)';
const slotWord = (doc: string, expected: string): Schema => ({
  kind: 'string',
  doc,
  pattern: /^[A-Za-z0-9_.-]{1,63}$/,
  expected,
});
const permanentSlot: Schema = {
  kind: 'object',
  doc: 'One permanent slot.',
  fields: {
    type: { kind: 'enum', doc: 'physical or logical.', values: SLOT_TYPES },
    database: slotWord('Database of a logical slot.', 'a database name (letters, digits, _ . -)'),
    plugin: slotWord('Output plugin of a logical slot, e.g. pglogical_output.', 'an output plugin name'),
  },
  rule: (v) => {
    if (v['type'] === undefined) return { key: 'type', message: 'is required: expected one of physical, logical' };
    if (v['type'] === 'logical')
      for (const k of ['database', 'plugin'])
        if (v[k] === undefined) return { key: k, message: `is required for a logical slot: expected a name` };
    if (v['type'] === 'physical')
      for (const k of ['database', 'plugin'])
        if (v[k] !== undefined)
          return { key: k, message: 'is only for a logical slot; remove it or set type: logical' };
    return undefined;
  },
};
const slotFields: Record<string, Schema> = {
  slots: {
    kind: 'map',
    doc: 'Permanent replication slots, Patroni-compatible: {name: {type, database, plugin}} with type physical or logical. The leader never drops them and publishes the confirmed position of each logical one in /status; replicas copy the logical ones and advance them, so they survive a failover (docs/multi-master.md, "Failover inside a site"). A missing logical slot is reported, never created on the leader.',
    values: 'scalar',
    keys: { pattern: SLOT_NAME, expected: SLOT_NAME_EXPECTED },
    entry: permanentSlot,
    default: {},
  },
  ignore_slots: {
    kind: 'list',
    doc: 'Slots pgkeel must leave alone, each a matcher {name, type, database, plugin} (any subset; a slot matching every key given is ignored). pgkeel never drops slots it did not create, so this is accepted for Patroni compatibility and documents intent.',
    of: {
      kind: 'object',
      doc: 'A slot matcher.',
      fields: {
        name: { kind: 'string', doc: 'Slot name.', pattern: SLOT_NAME, expected: SLOT_NAME_EXPECTED },
        type: { kind: 'enum', doc: 'physical or logical.', values: SLOT_TYPES },
        database: slotWord('Database.', 'a database name (letters, digits, _ . -)'),
        plugin: slotWord('Output plugin.', 'an output plugin name'),
      },
    },
    default: [],
  },
};
export interface PermanentSlot {
  type: (typeof SLOT_TYPES)[number];
  database?: string;
  plugin?: string;
}
export interface SlotMatcher {
  name?: string;
  type?: (typeof SLOT_TYPES)[number];
  database?: string;
  plugin?: string;
}
// --- end permanent slots ---

export const dynamicFields: Record<string, Schema> = {
  ttl: {
    kind: 'int',
    doc: 'Lease of the leader key: a leader that cannot renew it for this long loses it.',
    default: 10,
    min: 4,
    max: 3600,
    unit: 'seconds',
  },
  loop_wait: { kind: 'int', doc: 'Seconds between two HA cycles.', default: 1, min: 1, max: 300, unit: 'seconds' },
  retry_timeout: {
    kind: 'int',
    doc: 'How long one DCS or PostgreSQL call may take before it counts as failed.',
    default: 3,
    min: 1,
    max: 300,
    unit: 'seconds',
  },
  maximum_lag_on_failover: {
    kind: 'int',
    doc: 'A replica further behind the leader than this is not promoted automatically.',
    default: 1048576,
    min: 0,
    unit: 'bytes',
  },
  synchronous_mode: {
    kind: 'bool',
    doc: 'Synchronous replication managed by pgkeel; only a synchronous standby may be promoted.',
    default: false,
  },
  synchronous_mode_strict: {
    kind: 'bool',
    doc: 'With no synchronous standby available, block commits instead of falling back to asynchronous.',
    default: false,
  },
  synchronous_node_count: { kind: 'int', doc: 'Number of synchronous standbys.', default: 1, min: 1, max: 16 },
  failsafe_mode: {
    kind: 'bool',
    doc: 'While the DCS is down, the primary stays primary if every member confirms it over REST.',
    default: false,
  },
  primary_start_timeout: {
    kind: 'int',
    doc: 'How long a crashed primary may take to restart in place before it gives up the leader key.',
    default: 30,
    min: 0,
    unit: 'seconds',
  },
  check_timeline: { kind: 'bool', doc: 'Exclude replicas on an older timeline from promotion.', default: false },
  backup: {
    kind: 'object',
    optional: true,
    doc: 'Backups and WAL archiving (docs/backup.md). The repository and key file are taken from here only by nodes whose local file allows archive_command in postgresql.allow_dynamic_parameters; otherwise set them in the local backup section.',
    fields: backupDynamicFields,
  },
  postgresql: {
    kind: 'object',
    doc: 'PostgreSQL settings shared by every member.',
    fields: {
      parameters: parameters(
        'postgresql.conf parameters for all members (max_connections, wal_keep_size, ...). Parameters that run commands, load code or name files (archive_command, shared_preload_libraries, ...) are refused here unless postgresql.allow_dynamic_parameters lists them.',
      ),
      use_pg_rewind: {
        kind: 'bool',
        doc: 'Rejoin a former primary with pg_rewind instead of re-cloning it.',
        default: true,
      },
      use_slots: { kind: 'bool', doc: 'One physical replication slot per replica on the leader.', default: true },
    },
  },
  ...slotFields,
};

export const nodeSchema: Schema = {
  kind: 'object',
  doc: 'A pgkeel node.',
  fields: {
    scope: {
      kind: 'string',
      doc: 'Cluster name; every member of a cluster has the same scope.',
      required: true,
      pattern: NAME,
      expected: 'a cluster name (letters, digits, _ . -)',
    },
    namespace: {
      kind: 'string',
      doc: 'Top-level DCS prefix, as in Patroni.',
      default: 'service',
      pattern: /^\/?[A-Za-z0-9_.-]+\/?$/,
      expected: 'a path segment such as "service"',
    },
    name: {
      kind: 'string',
      doc: "This member's name, unique in the cluster.",
      required: true,
      pattern: NAME,
      expected: 'a member name (letters, digits, _ . -)',
    },
    etcd3: {
      kind: 'object',
      doc: 'The etcd v3 cluster used as DCS.',
      fields: {
        hosts: {
          kind: 'list',
          doc: 'etcd client endpoints (a list, or one comma-separated string).',
          of: hostport('etcd endpoint'),
          commaString: true,
          default: ['127.0.0.1:2379'],
        },
        ...etcdSecurityFields,
      },
    },
    restapi: {
      kind: 'object',
      doc: "The agent's REST API (Patroni-compatible).",
      fields: {
        listen: hostport('Address the REST API listens on.', '127.0.0.1:8008'),
        connect_address: hostport('Address other members and tools use to reach this API (defaults to listen).'),
        authentication: {
          kind: 'object',
          doc: 'Basic auth required for every unsafe endpoint (POST/PUT/PATCH/DELETE). Required when `listen` is not a loopback address; may be left out only on a loopback-only listener (`pgkeel up` always sets it).',
          optional: true,
          fields: {
            username: { kind: 'string', doc: 'User name.' },
            password: { kind: 'string', doc: 'Password (never logged).', secret: true },
          },
        },
        certfile: {
          kind: 'string',
          doc: "PEM server certificate: set it to serve https (the member's api_url becomes https://).",
        },
        keyfile: { kind: 'string', doc: 'PEM private key of `certfile` (default: the key inside `certfile`).' },
        keyfile_password: { kind: 'string', doc: 'Passphrase of an encrypted `keyfile`.', secret: true },
        cafile: {
          kind: 'string',
          doc: "PEM CA certificates client certificates must chain to (with `verify_client`); also how the agent checks other members' https certificates when `ctl.cacert` is not set.",
        },
        verify_client: {
          kind: 'enum',
          doc: 'Client certificates, as Patroni: none; optional (asked for, and required for unsafe endpoints); required (every TLS connection must present one signed by `cafile`).',
          values: ['none', 'optional', 'required'],
          default: 'none',
        },
        allow_drills: {
          kind: 'bool',
          doc: 'Accept POST /drill from `pgkeel drill` (docs/drill.md): it kills this PostgreSQL or cuts the agent off the DCS for a while. For staging clusters; refused unless `authentication` is set too. `pgkeel up` sets it.',
          default: false,
        },
      },
    },
    ctl: {
      kind: 'object',
      doc: "How `pgkeel ctl` and this agent call members' REST APIs over https (Patroni's `ctl` section). Each file falls back to the `restapi` one (`certfile`, `keyfile`, `keyfile_password`; `cacert` to `restapi.cafile`).",
      fields: {
        certfile: {
          kind: 'string',
          doc: 'PEM client certificate presented to members (needed when they set `verify_client`).',
        },
        keyfile: { kind: 'string', doc: 'PEM private key of `certfile`.' },
        keyfile_password: { kind: 'string', doc: 'Passphrase of an encrypted `keyfile`.', secret: true },
        cacert: {
          kind: 'string',
          doc: "PEM CA certificates the members' REST certificates must chain to (default: the system CAs).",
        },
        insecure: {
          kind: 'bool',
          doc: "Do not verify the members' certificates (host name and chain). Not for production.",
          default: false,
        },
      },
    },
    postgresql: {
      kind: 'object',
      doc: 'The local PostgreSQL instance.',
      fields: {
        listen: {
          kind: 'string',
          doc: 'Addresses PostgreSQL listens on (listen_addresses) and its port: host:port, or several hosts separated by commas with the port after the last, as in Patroni ("10.0.0.11,10.0.0.100:5432" also listens on a VIP; "0.0.0.0" or "*" on every address).',
          default: '127.0.0.1:5432',
          pattern: LISTEN,
          expected: 'host[,host...]:port, e.g. 127.0.0.1:5432 or 10.0.0.11,10.0.0.100:5432',
          check: (v) => portProblem(v),
        },
        connect_address: hostport(
          "Address other members and clients use to reach PostgreSQL (defaults to listen's first host and its port).",
        ),
        data_dir: {
          kind: 'string',
          doc: 'Data directory; created by initdb or pg_basebackup when empty.',
          required: true,
          expected: 'a path (relative to the config file)',
        },
        bin_dir: {
          kind: 'string',
          doc: 'Directory with initdb, pg_ctl, pg_basebackup, pg_rewind.',
          default: '/usr/lib/postgresql/15/bin',
        },
        socket_dir: { kind: 'string', doc: 'Unix socket directory of this instance (default: "<data_dir>/../run").' },
        pgpass: {
          kind: 'string',
          doc: 'libpq password file the agent writes for pg_basebackup and pg_rewind (default: "<data_dir>/../pgpass").',
        },
        parameters: parameters(
          'postgresql.conf parameters for this node only (override bootstrap.dcs.postgresql.parameters); any parameter may be set here, archive_command included. Server TLS: ssl, ssl_cert_file, ssl_key_file, ssl_ca_file, ssl_crl_file; when pgkeel runs as root, the files named here are handed to PostgreSQL as postgres-owned 0600 copies in "<data_dir>-ssl".',
        ),
        allow_dynamic_parameters: {
          kind: 'list',
          doc: 'Local-only parameters (archive_command, shared_preload_libraries, ... — the list above) this node accepts from the dynamic configuration (bootstrap.dcs, the DCS config key, PATCH /config, ctl edit-config). Empty: such parameters from the DCS are ignored with a warning.',
          of: { kind: 'string', doc: 'a parameter name', pattern: GUC_NAME, expected: GUC_EXPECTED },
          commaString: true,
          default: [],
        },
        pg_hba: {
          kind: 'list',
          doc: "pg_hba.conf lines added after pgkeel's own (local superuser and replication lines; with ssl on, pgkeel's TCP lines are hostssl).",
          of: { kind: 'string', doc: 'a pg_hba line' },
          default: [],
        },
        authentication: {
          kind: 'object',
          doc: 'Roles the agent uses.',
          fields: {
            superuser: credentials('The superuser the agent connects as.', 'postgres'),
            replication: credentials('The role replicas stream and clone with.', 'replicator'),
          },
        },
        callbacks_as_root: {
          kind: 'bool',
          doc: 'Run callbacks as root when the agent runs as root. Off: they run as the `postgres` OS user, like PostgreSQL (a script needing root, e.g. to move a VIP, can use sudo).',
          default: false,
        },
        create_replica_methods: {
          kind: 'list',
          doc: "How a new replica is made, tried in order (Patroni's create_replica_methods): backup = the newest backup in the repository plus its archived WAL, then streaming from the leader (no load on the leader); basebackup = pg_basebackup from the leader. backup is skipped without a repository.",
          of: { kind: 'enum', doc: 'a method', values: REPLICA_METHODS },
          commaString: true,
          default: ['basebackup'],
        },
        keep_moved_aside: {
          kind: 'int',
          doc: 'How many moved-aside copies of the data directory (`<data_dir>.before-reclone-<time>` from a reinitialize or re-clone; failed bootstraps keep at most one) to keep; older ones are removed first. 0 keeps none: the old data directory is deleted before the clone.',
          default: 1,
          min: 0,
          max: 100,
        },
        callbacks: {
          kind: 'object',
          doc: "Commands run on events with Patroni's arguments: <action> <role> <scope>.",
          fields: {
            on_start: { kind: 'string', doc: 'After PostgreSQL started.' },
            on_stop: { kind: 'string', doc: 'After PostgreSQL stopped.' },
            on_restart: { kind: 'string', doc: 'After a restart.' },
            on_reload: { kind: 'string', doc: 'After a reload.' },
            on_role_change: { kind: 'string', doc: 'After promotion or demotion.' },
          },
        },
      },
    },
    bootstrap: {
      kind: 'object',
      doc: 'Used once, by the member that initializes the cluster.',
      fields: {
        dcs: {
          kind: 'object',
          doc: 'Initial dynamic configuration written to the DCS `config` key.',
          fields: dynamicFields,
        },
        initdb: {
          kind: 'list',
          doc: 'Extra initdb options, e.g. ["encoding=UTF8", "locale=C.UTF-8"]. Data checksums are always on.',
          of: { kind: 'string', doc: 'an initdb option' },
          default: [],
        },
        restore: bootstrapRestoreSchema,
      },
    },
    tags: {
      kind: 'object',
      doc: 'Member tags, as in Patroni.',
      fields: {
        nofailover: { kind: 'bool', doc: 'Never promote this member automatically.', default: false },
        noloadbalance: {
          kind: 'bool',
          doc: 'Exclude this member from read load balancing (/replica answers 503).',
          default: false,
        },
        clonefrom: { kind: 'bool', doc: 'Prefer this member as the source for new replicas.', default: false },
        nosync: { kind: 'bool', doc: 'Never choose this member as a synchronous standby.', default: false },
      },
    },
    backup: {
      kind: 'object',
      optional: true,
      doc: "This node's backup repository and key (local-only: paths PostgreSQL's archive_command writes); schedule, retention and compression are in the dynamic configuration's backup section.",
      fields: backupLocalFields,
    },
    metrics: metricsSchema,
    watchdog: {
      kind: 'object',
      doc: "Watchdog fencing, as Patroni (docs/deploy-watchdog.md): the leader arms the device with timeout ttl - safety_margin and feeds it every cycle, so a hung agent's host is reset before another member can take the leader key.",
      fields: {
        mode: {
          kind: 'enum',
          doc: 'off: never use it; automatic: use it when it can be armed, warn once when not; required: never take or keep the leader key without an armed watchdog.',
          values: WATCHDOG_MODES,
          default: 'automatic',
        },
        device: {
          kind: 'string',
          doc: 'The watchdog device (softdog: `modprobe softdog`).',
          default: '/dev/watchdog',
          pattern: /^\/\S+$/,
          expected: 'an absolute device path',
        },
        safety_margin: {
          kind: 'int',
          doc: 'The watchdog fires this long before the leader key would expire (timeout = ttl - safety_margin).',
          default: 5,
          min: 0,
          max: 3600,
          unit: 'seconds',
        },
      },
    },
    vip: vipSchema,
    log: {
      kind: 'object',
      doc: 'Logging.',
      fields: {
        level: {
          kind: 'enum',
          doc: 'Lowest level written.',
          values: ['debug', 'info', 'warn', 'error'],
          default: 'info',
        },
        format: {
          kind: 'enum',
          doc: 'json: one JSON object per line; text: readable lines.',
          values: ['json', 'text'],
          default: 'json',
        },
      },
    },
  },
};

/** Patroni's per-role libpq TLS settings (postgresql.authentication.<role>.ssl*). */
export interface SslClient {
  sslmode?: SslMode;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  sslcrl?: string;
}

export interface Credentials extends SslClient {
  username: string;
  password: string;
}

export interface DynamicConfig {
  ttl: number;
  loop_wait: number;
  retry_timeout: number;
  maximum_lag_on_failover: number;
  synchronous_mode: boolean;
  synchronous_mode_strict: boolean;
  synchronous_node_count: number;
  failsafe_mode: boolean;
  primary_start_timeout: number;
  check_timeline: boolean;
  postgresql: { parameters: Record<string, string | number | boolean>; use_pg_rewind: boolean; use_slots: boolean };
  backup?: BackupConfig;
  /** Set by `ctl pause`; absent or false when not paused. */
  pause?: boolean;
  /** Permanent slots (Patroni `slots`); the schema fills `{}`. */
  slots?: Record<string, PermanentSlot>;
  /** Patroni `ignore_slots`; the schema fills `[]`. */
  ignore_slots?: SlotMatcher[];
}

export type CallbackName = 'on_start' | 'on_stop' | 'on_restart' | 'on_reload' | 'on_role_change';

export interface NodeConfig {
  scope: string;
  namespace: string;
  name: string;
  etcd3: { hosts: string[] } & EtcdSecurity;
  restapi: {
    listen: string;
    connect_address: string;
    authentication?: { username?: string; password?: string };
    certfile?: string;
    keyfile?: string;
    keyfile_password?: string;
    cafile?: string;
    verify_client: 'none' | 'optional' | 'required';
    /** Default false (the schema fills it); optional here so REST-client callers need not name it. */
    allow_drills?: boolean;
  };
  ctl: { certfile?: string; keyfile?: string; keyfile_password?: string; cacert?: string; insecure: boolean };
  postgresql: {
    listen: string;
    connect_address: string;
    data_dir: string;
    bin_dir: string;
    socket_dir: string;
    pgpass: string;
    parameters: Record<string, string | number | boolean>;
    allow_dynamic_parameters: string[];
    pg_hba: string[];
    authentication: { superuser: Credentials; replication: Credentials };
    callbacks: Partial<Record<CallbackName, string>>;
    callbacks_as_root: boolean;
    keep_moved_aside: number;
    create_replica_methods: ReplicaMethod[];
  };
  bootstrap: { dcs: DynamicConfig; initdb: string[]; restore?: BootstrapRestoreConfig };
  tags: { nofailover: boolean; noloadbalance: boolean; clonefrom: boolean; nosync: boolean };
  backup?: BackupLocalConfig;
  metrics: MetricsConfig;
  watchdog: { mode: WatchdogMode; device: string; safety_margin: number };
  vip?: VipConfig;
  log: { level: 'debug' | 'info' | 'warn' | 'error'; format: 'json' | 'text' };
}
