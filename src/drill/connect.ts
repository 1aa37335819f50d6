/**
 * Where the drill's probe writes (docs/drill.md, "The probe"):
 * - `--dsn postgres://user:password@host1:port1,host2:port2/db?sslmode=…`: the hosts in order, the first that takes
 *   writes — a proxy, a VIP, or the members themselves in libpq's multi-host form;
 * - otherwise the member the DCS names leader, as the superuser of the node config (`-c node.yml`) or of the local
 *   cluster (`--dir`). A ctl config or `--etcd` carries no database password, so it needs `--dsn`.
 */
import { readFileSync } from 'node:fs';
import type { CtlClient } from '../ctl/client.js';
import { DrillError } from './errors.js';
import type { Endpoint, Endpoints, ProbeLogin } from './probe.js';

/** `host`, `host:port`, `[v6]` or `[v6]:port`. */
function endpoint(text: string, dsn: string): Endpoint {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(text);
  const port = Number(m?.[3] ?? 5432);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new DrillError('DRILL_BAD_DSN', `--dsn: cannot read the host "${text}" in ${redact(dsn)}`);
  return { host: decodeURIComponent((m[1] ?? m[2]) as string), port };
}

/** The DSN with its password replaced, for messages. */
export function redact(dsn: string): string {
  return dsn.replace(/^(postgres(?:ql)?:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

export function parseDsn(dsn: string): { login: ProbeLogin; endpoints: readonly Endpoint[] } {
  const m = /^postgres(?:ql)?:\/\/(?:([^@/]*)@)?([^/?]*)(?:\/([^?]*))?(?:\?(.*))?$/.exec(dsn);
  if (!m)
    throw new DrillError(
      'DRILL_BAD_DSN',
      `--dsn: expected postgres://user:password@host:port[,…]/db, got ${redact(dsn)}`,
    );
  const [user, password] = (m[1] ?? '').split(/:(.*)/s) as [string, string | undefined];
  const hosts = (m[2] ?? '').split(',').filter(Boolean);
  if (!hosts.length) throw new DrillError('DRILL_BAD_DSN', `--dsn names no host: ${redact(dsn)}`);
  const params = new URLSearchParams(m[4] ?? '');
  for (const k of params.keys())
    if (!['sslmode', 'sslrootcert', 'target_session_attrs', 'connect_timeout', 'application_name'].includes(k))
      throw new DrillError('DRILL_BAD_DSN', `--dsn: parameter "${k}" is not supported by the probe`);
  const mode = params.get('sslmode') ?? 'disable';
  const root = params.get('sslrootcert');
  let ssl: ProbeLogin['ssl'];
  if (['disable', 'allow', 'prefer'].includes(mode)) ssl = false;
  else if (mode === 'require') ssl = { rejectUnauthorized: false };
  else if (mode === 'verify-ca' || mode === 'verify-full') {
    let ca: string | undefined;
    try {
      ca = root ? readFileSync(root, 'utf8') : undefined;
    } catch (err) {
      throw new DrillError('DRILL_BAD_DSN', `--dsn: cannot read sslrootcert ${root}: ${(err as Error).message}`);
    }
    ssl = {
      ...(ca ? { ca } : {}),
      ...(mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
    };
  } else throw new DrillError('DRILL_BAD_DSN', `--dsn: unknown sslmode "${mode}"`);
  const db = decodeURIComponent(m[3] ?? '');
  const u = decodeURIComponent(user);
  return {
    login: {
      user: u || 'postgres',
      ...(password !== undefined ? { password: decodeURIComponent(password) } : {}),
      database: db || u || 'postgres',
      ssl,
    },
    endpoints: hosts.map((h) => endpoint(h, dsn)),
  };
}

/** The member the DCS names leader now, from its `conn_url`; none while the key is free or the DCS is down. */
export function leaderEndpoints(client: CtlClient): Endpoints {
  return async () => {
    const c = await client.cluster();
    const url = c.leader ? c.members.get(c.leader.name)?.record.conn_url : undefined;
    if (!url) return [];
    const u = new URL(url);
    return [{ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 5432) }];
  };
}
