/** Renders docs/config.md from the schema, so the reference cannot drift from what is validated. */
import { describe } from './schema.js';
import { nodeSchema } from './node.js';
import { ENV_ALIASES, envNameFor } from './load.js';
import { LOCAL_ONLY_PARAMETERS } from './pg-params.js';
import { proxySchema } from '../proxy/config.js';

export function renderConfigDoc(): string {
  const rows = describe(nodeSchema);
  const lines = [
    '# pgkeel node configuration',
    '',
    '<!-- Generated from src/config/node.ts by `npm run docs`; a unit test fails when this file is out of date. -->',
    '',
    "One YAML file per node, shaped like Patroni's `patroni.yml` so an existing file carries over (keys pgkeel does not",
    'know are refused with a "did you mean", never ignored). Check a file with `pgkeel config check -c node.yml`: every',
    'problem is printed with its key path and the expected form, and the command exits 2.',
    '',
    "Relative paths are relative to the config file's directory. Every setting can be overridden by an environment",
    'variable named `PGKEEL_` + its path in upper case with `.` as `_` (e.g. `PGKEEL_POSTGRESQL_DATA_DIR`); lists take',
    'comma-separated values. Secrets are never written to logs; every secret `k` can instead be read from a file given',
    'as `k_file` (relative to the config file, one trailing newline removed; not both), e.g.',
    '`restapi.authentication.password_file: restapi.pw` — keep such files owned by root, mode 0600.',
    '',
    'No string setting may hold a control character (a newline, carriage return, NUL, …; tab is allowed), parameter',
    'names must be PostgreSQL identifiers (`work_mem`, `pg_stat_statements.max`), and ports are 1–65535.',
    '',
    "`bootstrap.dcs` is the cluster's *dynamic* configuration: the member that initializes the cluster writes it to the",
    'DCS `config` key; afterwards the DCS copy is what counts (change it with `pgkeel ctl edit-config`). The rule',
    '`loop_wait + 2*retry_timeout <= ttl` is enforced: a leader must notice it lost the DCS and demote before its',
    'leader key can expire.',
    '',
    "Parameters that run a command, load code or name a file are local-only: set them in this file's",
    '`postgresql.parameters`. In the dynamic configuration (`bootstrap.dcs`, `PATCH /config`, `ctl edit-config`) they',
    'are refused with `CONFIG_PARAMETER_LOCAL_ONLY`, and found in the DCS they are ignored with a warning, unless this',
    'file lists them in `postgresql.allow_dynamic_parameters`. They are (names are case-insensitive):',
    Object.keys(LOCAL_ONLY_PARAMETERS)
      .map((k) => `\`${k}\``)
      .join(', ') + '.',
    '',
    'The REST API fails closed: a `restapi.listen` that is not a loopback address (127.0.0.0/8, ::1, localhost) is',
    'refused without `restapi.authentication`, because its unsafe endpoints change the cluster and, through PostgreSQL',
    'parameters, can run commands. With `restapi.certfile` it serves https; `restapi.verify_client` asks for client',
    'certificates; the `ctl` section says which certificates `pgkeel ctl` and the agent itself present to members',
    "(Patroni's keys and fallbacks, see docs/rest-api.md).",
    '',
    '| key | type | default | environment | description |',
    '|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const env = r.type.startsWith('a mapping') ? '' : `\`${envNameFor(r.path)}\``;
    lines.push(
      `| \`${r.path}\` | ${r.type.replace(/\|/g, '\\|')} | ${r.default ? `\`${r.default}\`` : ''} | ${env} | ${r.doc}${r.secret ? ' Secret.' : ''} |`,
    );
  }
  lines.push(
    '',
    "Shorter aliases, as Patroni's `PATRONI_SUPERUSER_PASSWORD` and friends:",
    '',
    '| environment | key |',
    '|---|---|',
  );
  for (const [env, path] of Object.entries(ENV_ALIASES)) lines.push(`| \`${env}\` | \`${path}\` |`);
  lines.push('', '## Example', '', '```yaml', EXAMPLE.trim(), '```', '');
  return lines.join('\n');
}

export const EXAMPLE = `
scope: prod
name: node1
etcd3:
  hosts: [10.0.0.11:2379, 10.0.0.12:2379, 10.0.0.13:2379]
  protocol: https
  cacert: /etc/pgkeel/tls/ca.crt
  cert: /etc/pgkeel/tls/etcd-client.crt
  key: /etc/pgkeel/tls/etcd-client.key
  username: pgkeel
  password_file: /etc/pgkeel/etcd.password
restapi:
  listen: 0.0.0.0:8008
  connect_address: 10.0.0.21:8008
  authentication: {username: admin, password: change-me}
  certfile: /etc/pgkeel/tls/node1.crt
  keyfile: /etc/pgkeel/tls/node1.key
  cafile: /etc/pgkeel/tls/ca.crt
  verify_client: required
ctl:
  certfile: /etc/pgkeel/tls/client.crt
  keyfile: /etc/pgkeel/tls/client.key
  cacert: /etc/pgkeel/tls/ca.crt
postgresql:
  listen: 0.0.0.0:5432
  connect_address: 10.0.0.21:5432
  data_dir: /var/lib/postgresql/15/pgkeel
  authentication:
    superuser: {username: postgres, password: change-me}
    replication: {username: replicator, password: change-me}
  parameters: {shared_buffers: 1GB}
  pg_hba: ["host all all 10.0.0.0/24 scram-sha-256"]
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 3
    maximum_lag_on_failover: 1048576
    synchronous_mode: false
tags: {nofailover: false, noloadbalance: false}
`;

/** The settings table of docs/proxy.md, from the proxy schema. */
export function renderProxySettings(): string {
  const lines = ['| key | type | default | description |', '|---|---|---|---|'];
  for (const r of describe(proxySchema))
    lines.push(
      `| \`${r.path}\` | ${r.type.replace(/\|/g, '\\|')} | ${r.default ? `\`${r.default}\`` : ''} | ${r.doc} |`,
    );
  return lines.join('\n');
}

const BEGIN = '<!-- settings: generated from src/proxy/config.ts by `npm run docs` -->';
const END = '<!-- end of generated settings -->';

/** docs/proxy.md with its generated settings table replaced by the current one. */
export function withProxySettings(doc: string): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error('docs/proxy.md lacks the generated-settings markers');
  return doc.slice(0, a + BEGIN.length) + '\n' + renderProxySettings() + '\n' + doc.slice(b);
}
