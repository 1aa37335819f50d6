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
  const ca = join(certDir, `${opts.ca ?? 'ca'}.crt`);
  const client = opts.client ?? 'client';
  return {
    restapi: {
      certfile: join(certDir, `${node}.crt`),
      keyfile: join(certDir, `${node}.key`),
      cafile: ca,
      verify_client: opts.verifyClient ?? 'required',
    },
    ctl: { certfile: join(certDir, `${client}.crt`), keyfile: join(certDir, `${client}.key`), cacert: ca },
  };
}
