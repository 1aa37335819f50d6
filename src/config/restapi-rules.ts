/**
 * Cross-field rules of the `restapi` and `ctl` sections. Fail closed: a REST API reachable from other hosts must
 * have credentials, because its unsafe endpoints change the cluster and, through PostgreSQL parameters, run
 * commands as the `postgres` user. Without credentials only a loopback-only listener is accepted.
 */
import { resolve } from 'node:path';
import { isLoopbackHost, parseHostPort } from '../lib/net.js';
import type { Problem } from './schema.js';
import type { NodeConfig } from './node.js';

export function restapiProblems(c: NodeConfig): Problem[] {
  const out: Problem[] = [];
  const r = c.restapi;
  const auth = r.authentication;
  if (auth && (!auth.username || !auth.password))
    out.push({ path: 'restapi.authentication', message: 'expected both username and password' });
  let host: string | null = null;
  try {
    host = parseHostPort(r.listen).host;
  } catch {
    // restapi.listen's own pattern check reports it
  }
  if (!auth && host !== null && !isLoopbackHost(host)) {
    out.push({
      path: 'restapi.authentication',
      message: `is required when restapi.listen is not a loopback address (got ${r.listen}): set restapi.authentication {username, password}, or listen on 127.0.0.1 only`,
    });
  }
  if (r.verify_client !== 'none' && !r.cafile)
    out.push({
      path: 'restapi.cafile',
      message: `is required with restapi.verify_client: ${r.verify_client} (the CA client certificates must chain to)`,
    });
  if (!r.certfile) {
    for (const k of ['keyfile', 'keyfile_password', 'cafile'] as const)
      if (r[k] !== undefined) out.push({ path: `restapi.${k}`, message: 'needs restapi.certfile (https) as well' });
    if (r.verify_client !== 'none')
      out.push({
        path: 'restapi.verify_client',
        message: 'needs restapi.certfile (client certificates exist only with https)',
      });
  }
  if (c.ctl.keyfile && !(c.ctl.certfile ?? r.certfile))
    out.push({ path: 'ctl.keyfile', message: 'needs ctl.certfile as well' });
  return out;
}

/** Certificate paths are relative to the config file's directory, like data_dir. */
export function resolveRestFiles(c: NodeConfig, baseDir: string): void {
  for (const k of ['certfile', 'keyfile', 'cafile'] as const)
    if (c.restapi[k]) c.restapi[k] = resolve(baseDir, c.restapi[k] as string);
  for (const k of ['certfile', 'keyfile', 'cacert'] as const)
    if (c.ctl[k]) c.ctl[k] = resolve(baseDir, c.ctl[k] as string);
}
