/**
 * docs/errors.md, generated: the agent's and CLI's error codes (listed here, next to where they are thrown), and
 * the protocol and proxy catalogues (read from the code, so the SQLSTATEs shown are the ones sent).
 */
import { backupErrorCatalogue } from '../backup/errors.js';
import { haErrorCatalogue } from '../ha/errors.js';
import { meshErrorCatalogue } from '../mesh/errors.js';
import { eventsErrorCatalogue } from '../observe/events/errors.js';
import { pgMetricsErrorCatalogue } from '../observe/pg-metrics/errors.js';
import { protocolErrorCatalogue } from '../protocol/errors.js';
import { proxyErrorCatalogue } from '../proxy/errors.js';
import { reportErrorCatalogue } from '../observe/report/errors.js';

const AGENT_CODES: ReadonlyArray<readonly [string, string, string]> = [
  [
    'CONFIG_INVALID',
    'config',
    'A node or proxy config has problems; every one is printed with its key path and the expected form. Exit 2, nothing started.',
  ],
  [
    'CONFIG_PARAMETER_LOCAL_ONLY',
    'config, REST, agent',
    "A PostgreSQL parameter that runs a command, loads code or names a file (archive_command, shared_preload_libraries, data_directory, …) was given in the dynamic configuration (bootstrap.dcs, PATCH/PUT /config, ctl edit-config). Refused (HTTP 400, exit 2) naming the parameter; found in the DCS `config` key, the agent ignores it with a warning and keeps running. Set it in the node's local postgresql.parameters, or allow it with postgresql.allow_dynamic_parameters.",
  ],
  ['CLI_USAGE', 'cli', 'Unknown command or option (with a "did you mean"), or a missing value. Exit 2.'],
  [
    'LOCAL_CLUSTER',
    'up/down/status',
    'A local cluster problem: no cluster in DIR, a mismatching --nodes/--port-base, a missing package, a process that did not start (the end of its log is shown), or a node `down` could not stop because its pid file names another process (such a pid file is reported as stale — "agent.pid names process N, which is not node1\'s agent (it runs: …); not signalled" — and never signalled).',
  ],
  [
    'CONFIG_INSECURE',
    'agent',
    "As root, the agent refuses a config file (or a directory above it) that is not root's or is writable by group or others — whoever can rewrite it can run commands as root (like ssh's StrictModes; sticky directories such as /tmp are fine). The message names each path and the fix; `pgkeel up` repairs the folders of clusters it made.",
  ],
  [
    'FS_NOT_USABLE_BY_POSTGRES',
    'postgres',
    'An existing data directory is not owned by the `postgres` OS user, or an existing socket directory is not writable by it. pgkeel never chowns a directory it did not create: chown it, or point data_dir at a path that does not exist yet.',
  ],
  [
    'FS_SYMLINK_REFUSED',
    'postgres',
    'A file root writes or reads in a directory PostgreSQL can write (postgresql.conf, the PostgreSQL log) is a symlink; pgkeel does not follow it. Remove it.',
  ],
  [
    'DCS_UNAVAILABLE',
    'dcs',
    'No etcd endpoint answered within the request timeout; the message names every endpoint and why it failed. A leader demotes (unless failsafe mode).',
  ],
  ['DCS_REQUEST', 'dcs', 'etcd refused a request (HTTP error with its message).'],
  [
    'DCS_AUTH',
    'dcs',
    "etcd refused the client: wrong or missing etcd3.username/password, or the user's role lacks readwrite on the cluster's prefix. The message names the endpoint and the user, never the password.",
  ],
  ['DCS_CLOSED', 'dcs', 'A call on a store that was closed (shutdown in progress).'],
  [
    'PG_INITDB_FAILED',
    'postgres',
    'initdb failed; the partial data directory is moved to <data_dir>.failed-bootstrap-<time> and the initialize key released so the next start retries.',
  ],
  [
    'PG_START_FAILED',
    'postgres',
    'PostgreSQL did not start; the end of its log is attached. The agent retries after a pause.',
  ],
  ['PG_STOP_FAILED', 'postgres', 'PostgreSQL did not stop, even with an immediate shutdown.'],
  [
    'PG_CLONE_FAILED',
    'postgres',
    'pg_basebackup failed; the partial copy is moved to <data_dir>.failed-clone-<time>, never deleted; retried after a pause.',
  ],
  [
    'PG_RESTORE_FAILED',
    'postgres',
    'Bootstrapping from a backup (bootstrap.restore) failed: the restore, the recovery to the target or the promotion; the partial data directory is moved to <data_dir>.failed-bootstrap-<time> and the initialize key released so the next start retries. The message names the step; the end of the PostgreSQL log is attached.',
  ],
  [
    'PG_REWIND_FAILED',
    'postgres',
    'pg_rewind failed; the agent re-clones instead (the old data directory is moved aside).',
  ],
  ['PG_PROMOTE_FAILED', 'postgres', 'pg_ctl promote failed or timed out; the end of the PostgreSQL log is attached.'],
  [
    'PG_TLS_FILE',
    'postgres',
    'A TLS file named in the local config (postgresql.parameters.ssl_*_file, postgresql.authentication.<role>.ssl*) cannot be read, or "<data_dir>-ssl" is not a directory owned by postgres; the message names the setting.',
  ],
  [
    'PG_CONF_REFUSED',
    'postgres',
    'The renderer refused to write postgresql.pgkeel.conf or pg_hba.conf: a parameter name that is not a PostgreSQL identifier or a value/line with a control character (config validation normally refuses these first, naming the key).',
  ],
  ['PG_COMMAND_FAILED', 'postgres', 'Another pg_ctl command (reload) failed.'],
  ...Object.entries(haErrorCatalogue).map(([code, e]) => [code, e.where, e.summary] as const),
  ...Object.entries(backupErrorCatalogue).map(([code, e]) => [code, e.where, e.summary] as const),
  ...Object.entries(reportErrorCatalogue).map(([code, e]) => [code, e.where, e.summary] as const),
  ...Object.entries(eventsErrorCatalogue).map(([code, e]) => [code, e.where, e.summary] as const),
  ...Object.entries(pgMetricsErrorCatalogue).map(([code, e]) => [code, e.where, e.summary] as const),
  ...Object.entries(meshErrorCatalogue).map(([code, e]) => [code, e.where, e.summary] as const),
  [
    'CERT_GENERATION_FAILED',
    'up --tls',
    "Making the local CA or a certificate with openssl failed; the message names the directory and openssl's error.",
  ],
  [
    'REST_TLS_FILE',
    'agent/ctl',
    'A certificate, key or CA file named by restapi.certfile/keyfile/cafile or ctl.certfile/keyfile/cacert cannot be read; the message names the key and the file. The agent does not start.',
  ],
  [
    'CTL_*',
    'ctl',
    'pgkeel ctl refusals (no healthy candidate, candidate lagging, cluster paused, …): see docs/ctl.md. Exit 1.',
  ],
];

export function renderErrorsDoc(): string {
  const lines = [
    '# pgkeel errors',
    '',
    '<!-- Generated by `npm run docs` from src/config/errors-doc.ts, src/ha/errors.ts, src/protocol/errors.ts and src/proxy/errors.ts. -->',
    '',
    'Every error pgkeel raises has a stable code (grep logs for it) and names what it concerns (node, key, LSN, pool).',
    'Logs are JSON lines with the code in `err.code`; the CLI prints the message and exits 1 (2 for usage and config).',
    '',
    '## Agent, CLI and DCS',
    '',
    '| code | where | meaning and what happens |',
    '|---|---|---|',
    ...AGENT_CODES.map(([code, where, what]) => `| \`${code}\` | ${where} | ${what} |`),
    '',
    '## Proxy → client (ErrorResponse)',
    '',
    'Errors the proxy itself sends to a client (errors forwarded from PostgreSQL keep their own SQLSTATE). Each is built',
    'at one catch site; a FATAL closes only that client.',
    '',
    '| code | SQLSTATE | severity | meaning |',
    '|---|---|---|---|',
    ...Object.entries(proxyErrorCatalogue).map(
      ([code, e]) => `| \`${code}\` | ${e.sqlstate} | ${e.severity} | ${e.summary} |`,
    ),
    '',
    '## Wire protocol (malformed input)',
    '',
    '| code | SQLSTATE | meaning |',
    '|---|---|---|',
    ...Object.entries(protocolErrorCatalogue).map(([code, e]) => `| \`${code}\` | ${e.sqlstate} | ${e.summary} |`),
    '',
  ];
  return lines.join('\n');
}
