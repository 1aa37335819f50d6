/**
 * The `restapi` and `ctl` sections of a node config for REST over https with client certificates, from a
 * directory of PEM files as src/lib/certs.ts makes them: DIR/<ca>.crt, DIR/<node>.{crt,key} (the member's server
 * certificate) and DIR/<client>.{crt,key} (presented by `pgkeel ctl` and by this agent to the other members).
 * Merge the result into a node.yml's `restapi` (keeping listen, connect_address and authentication).
 */
import { join } from 'node:path';

export interface RestTlsSections {
  restapi: { certfile: string; keyfile: string; cafile: string; verify_client: 'none' | 'optional' | 'required' };
  ctl: { certfile: string; keyfile: string; cacert: string };
}

export function restTlsSections(
  certDir: string,
  node: string,
  opts: { ca?: string; client?: string; verifyClient?: 'none' | 'optional' | 'required' } = {},
): RestTlsSections {
  const client = opts.client ?? 'client';
  return restTlsFromFiles(
    {
      ca: join(certDir, `${opts.ca ?? 'ca'}.crt`),
      cert: join(certDir, `${node}.crt`),
      key: join(certDir, `${node}.key`),
      clientCert: join(certDir, `${client}.crt`),
      clientKey: join(certDir, `${client}.key`),
    },
    opts.verifyClient ?? 'required',
  );
}

/** The same from any PEM files (`pgkeel init`): one certificate may serve as both server and client certificate. */
export function restTlsFromFiles(
  f: { ca: string; cert: string; key: string; clientCert: string; clientKey: string },
  verifyClient: 'none' | 'optional' | 'required',
): RestTlsSections {
  return {
    restapi: { certfile: f.cert, keyfile: f.key, cafile: f.ca, verify_client: verifyClient },
    ctl: { certfile: f.clientCert, keyfile: f.clientKey, cacert: f.ca },
  };
}
