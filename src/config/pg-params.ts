/**
 * What may go into a PostgreSQL configuration file, and what only a node's local file may set. Pure.
 *
 * Names: PostgreSQL's own lexer (src/backend/utils/misc/guc-file.l) takes an identifier — letters, digits, `_`,
 * `$`, not starting with a digit — optionally qualified once with a dot for extension settings
 * (`pg_stat_statements.max`). Anything else (a space, `=`, a newline) would either be refused by PostgreSQL at
 * start-up or, worse, start a second line; so it is refused here, before it reaches a file.
 *
 * Local-only parameters: the dynamic configuration (the DCS `config` key, written through PATCH/PUT /config,
 * `ctl edit-config`, or by anyone with write access to etcd) is shared by every member and reaches the root-run
 * agent from the network. Parameters that make PostgreSQL run a command, load a library, or read/write a file path
 * chosen by the writer turn that access into code execution as the `postgres` OS user, so they come only from the
 * node's own root-owned file — unless that file lists them in `postgresql.allow_dynamic_parameters`, Patroni's
 * local-versus-dynamic distinction made explicit. GUC names are case-insensitive, so comparisons are too.
 */
import { join, type Problem } from './schema.js';

export const GUC_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?$/;
export const GUC_EXPECTED =
  'a PostgreSQL parameter name (letters, digits, _ and $, e.g. work_mem; one dot for an extension setting, e.g. pg_stat_statements.max)';

export const LOCAL_ONLY_CODE = 'CONFIG_PARAMETER_LOCAL_ONLY';

const RUNS_COMMAND = 'runs a shell command as the postgres OS user';
const LOADS_CODE = 'loads a shared library into PostgreSQL';
const FILE_PATH = 'names a file or directory PostgreSQL reads or writes';

/** PostgreSQL 15 parameters (and config-file directives) only the node's local file may set, with the reason. */
export const LOCAL_ONLY_PARAMETERS: Readonly<Record<string, string>> = {
  archive_command: RUNS_COMMAND,
  restore_command: RUNS_COMMAND,
  archive_cleanup_command: RUNS_COMMAND,
  recovery_end_command: RUNS_COMMAND,
  ssl_passphrase_command: RUNS_COMMAND,
  archive_library: LOADS_CODE,
  shared_preload_libraries: LOADS_CODE,
  session_preload_libraries: LOADS_CODE,
  local_preload_libraries: LOADS_CODE,
  jit_provider: LOADS_CODE,
  dynamic_library_path: 'chooses where PostgreSQL loads shared libraries from',
  data_directory: FILE_PATH,
  config_file: FILE_PATH,
  hba_file: FILE_PATH,
  ident_file: FILE_PATH,
  external_pid_file: FILE_PATH,
  promote_trigger_file: 'names a file whose creation promotes a standby',
  log_directory: FILE_PATH,
  log_filename: FILE_PATH,
  log_file_mode: 'sets the permissions of the server log files',
  ssl_cert_file: FILE_PATH,
  ssl_key_file: FILE_PATH,
  ssl_ca_file: FILE_PATH,
  ssl_crl_file: FILE_PATH,
  ssl_crl_dir: FILE_PATH,
  ssl_dh_params_file: FILE_PATH,
  krb_server_keyfile: FILE_PATH,
  unix_socket_directories: FILE_PATH,
  unix_socket_group: 'sets who may connect through the unix socket',
  unix_socket_permissions: 'sets who may connect through the unix socket',
  include: 'includes another configuration file',
  include_dir: 'includes another configuration directory',
  include_if_exists: 'includes another configuration file',
};

/** Why `name` is local-only, or undefined for an ordinary parameter. */
export function localOnlyReason(name: string): string | undefined {
  const n = name.toLowerCase();
  return Object.hasOwn(LOCAL_ONLY_PARAMETERS, n) ? LOCAL_ONLY_PARAMETERS[n] : undefined;
}

/** The names in `params` that are local-only and not listed in `allowed` (both compared case-insensitively). */
export function refusedDynamicNames(params: Readonly<Record<string, unknown>>, allowed: readonly string[]): string[] {
  const allow = new Set(allowed.map((a) => a.toLowerCase()));
  return Object.keys(params).filter((n) => localOnlyReason(n) !== undefined && !allow.has(n.toLowerCase()));
}

/**
 * One problem (code CONFIG_PARAMETER_LOCAL_ONLY) per local-only parameter in `params` that `allowed` (the node's
 * postgresql.allow_dynamic_parameters) does not list; `path` is where the map sits (for the key path).
 */
export function localOnlyProblems(
  params: Readonly<Record<string, unknown>>,
  path: string,
  allowed: readonly string[],
): Problem[] {
  return refusedDynamicNames(params, allowed).map((name) => ({
    path: join(path, name),
    code: LOCAL_ONLY_CODE,
    message: `${LOCAL_ONLY_CODE}: ${name} ${localOnlyReason(name)}, so it cannot be set in the dynamic configuration; set it in postgresql.parameters of each node's config file, or allow it there with postgresql.allow_dynamic_parameters: [${name.toLowerCase()}]`,
  }));
}
