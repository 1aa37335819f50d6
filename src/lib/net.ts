import { createServer } from 'node:net';

/** Asks the kernel for a free TCP port on `host` (port 0), then releases it. Tests use it instead of fixed ports. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Splits "host:port" (IPv6 as "[::1]:5432"); throws on a malformed address. */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new Error(`expected host:port, got "${text}"`);
  return { host: (m[1] ?? m[2]) as string, port };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Only this host can reach a listener on it: 127.0.0.0/8, ::1 (also IPv4-mapped) or "localhost". 0.0.0.0 and :: are not. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Splits PostgreSQL's listen setting as Patroni writes it: one or more comma-separated hosts and one port after the
 * last, e.g. "10.0.0.11,10.0.0.100:5432" (IPv6 hosts bracketed: "[::1],10.0.0.11:5432"; "*" or 0.0.0.0 for every
 * address). Throws on a malformed value. A single "host:port" gives one host, as parseHostPort.
 */
export function parseListen(text: string): { hosts: string[]; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  const hosts = (m?.[1] ?? '').split(',').map((h) => h.trim().replace(/^\[(.*)\]$/, '$1'));
  if (!m || !(port > 0 && port < 65536) || hosts.some((h) => h === '' || /[\s[\]]/.test(h)))
    throw new Error(`expected host[,host…]:port, got "${text}"`);
  return { hosts, port };
}

/** PostgreSQL's listen_addresses for the hosts of a listen setting: 0.0.0.0 becomes "*" (every address). */
export function listenAddresses(hosts: readonly string[]): string {
  return hosts.map((h) => (h === '0.0.0.0' ? '*' : h)).join(',');
}
