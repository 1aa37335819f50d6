/**
 * The `vip` section of a node config: the address the leader's agent holds on one interface (docs/deploy-vip.md).
 * IPv4 only: the announcement is a gratuitous ARP (iputils arping); IPv6 would need unsolicited neighbour adverts.
 */
import type { Schema } from '../config/schema.js';

export interface VipConfig {
  address: string;
  interface: string;
  netmask: number;
}

const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

export const vipSchema: Schema = {
  kind: 'object',
  optional: true,
  doc: 'A virtual IP the leader holds (docs/deploy-vip.md): the leader adds it and announces it with a gratuitous ARP; every other member makes sure it does not hold it. Needs root or CAP_NET_ADMIN, iproute2 and arping (iputils-arping).',
  fields: {
    address: {
      kind: 'string',
      doc: 'The virtual IPv4 address clients connect to; a free address on the subnet of `interface`.',
      required: true,
      pattern: IPV4,
      expected: 'an IPv4 address, e.g. 10.0.0.100',
      check: (v) =>
        v.split('.').every((o) => Number(o) <= 255) ? undefined : `expected an IPv4 address, got ${JSON.stringify(v)}`,
    },
    interface: {
      kind: 'string',
      doc: 'The network interface the address is added to (`ip addr add … dev <interface>`), e.g. eth0.',
      required: true,
      pattern: /^[A-Za-z0-9_.:@-]{1,15}$/,
      expected: 'a network interface name, e.g. eth0',
    },
    netmask: {
      kind: 'int',
      doc: 'Prefix length of the address (24 for 255.255.255.0), as `ip addr add <address>/<netmask>` takes it.',
      required: true,
      min: 1,
      max: 32,
      unit: 'bits',
    },
  },
};

/**
 * A warning for a VIP PostgreSQL will not answer on, or null. PostgreSQL binds its listen addresses once, at start:
 * a replica started while the VIP is elsewhere cannot bind it (it starts anyway, with a warning in its log), and
 * after its promotion it would not answer on the VIP — unless the kernel lets it bind an address the host does not
 * have yet (net.ipv4.ip_nonlocal_bind = 1), or it listens on every address.
 * `listenHosts`: postgresql.listen's hosts; `nonlocalBind`: the sysctl's value (null when it cannot be read).
 */
export function vipListenWarning(
  vip: VipConfig,
  listenHosts: readonly string[],
  nonlocalBind: boolean | null,
): string | null {
  if (listenHosts.some((h) => h === '*' || h === '0.0.0.0')) return null;
  if (!listenHosts.includes(vip.address))
    return `postgresql.listen (${listenHosts.join(',')}) does not include the VIP ${vip.address} or "*": PostgreSQL will not answer on the VIP (fine if only a proxy listens there)`;
  if (nonlocalBind === false)
    return `postgresql.listen names the VIP ${vip.address} but net.ipv4.ip_nonlocal_bind is 0: a replica's PostgreSQL cannot bind the VIP at start, and after a promotion it would not answer on it; set the sysctl to 1 or listen on "*"`;
  return null;
}
